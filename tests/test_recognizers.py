"""The recognizer seam: SFace, ArcFace and their fusion each verify real LFW pairs, the fusion's score is the weighted
mean of the two cosines (the plain mean at weight 0.5), and a decision calibration is never used with a recognizer (or
a fusion weight) it was not fitted for."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgefx.faces.decision import Calibration, cosine, load_calibration
from edgefx.faces.fusion import Fusion
from edgefx.faces.loading import RECOGNIZERS, load_face_models, load_recognizer
from edgefx.faces.recognizer import Recognizer
from edgefx.runtime.config import Settings, default_models_dir
from edgefx.runtime.errors import BadArgument, CalibrationMismatch, ModelError, ModelMissing

MODELS = default_models_dir()
CALIBRATIONS = MODELS / "calibration"


def settings(recognizer: str, **extra: object) -> Settings:
    return Settings.from_env(recognizer=recognizer, **extra)


def recognizer_or_skip(name: str) -> Recognizer:
    try:
        return load_recognizer(settings(name))
    except ModelMissing as exc:
        pytest.skip(f"{name} is not built ({exc.message}): `python -m export all`")


@pytest.fixture(scope="module", params=RECOGNIZERS)
def engine_of(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    from edgefx.engine import Engine

    try:
        return Engine(settings(request.param), load_qa=False)
    except ModelMissing as exc:
        pytest.skip(f"{request.param}: model or calibration missing ({exc.message}); `python -m export all` with LFW")


# ---- real LFW DevTest pairs ------------------------------------------------------------------------------------

def test_each_recognizer_matches_a_genuine_pair(engine_of, matched_pair_bytes) -> None:  # type: ignore[no-untyped-def]
    result = engine_of.verify(*matched_pair_bytes)
    assert result.match, (engine_of.recognizer.name, result.score, result.threshold)
    assert result.score > result.threshold
    assert engine_of.model_info()["recognizer"] == engine_of.recognizer.name
    assert engine_of.calibration.recognizer == engine_of.recognizer.name


def test_each_recognizer_rejects_an_impostor_pair(engine_of, mismatched_pair_bytes) -> None:  # type: ignore[no-untyped-def]
    result = engine_of.verify(*mismatched_pair_bytes)
    assert not result.match, (engine_of.recognizer.name, result.score, result.threshold)
    assert result.to_dict()["model"]["recognizer"] == engine_of.recognizer.name


def test_each_recognizer_gives_unit_rows_of_its_size(engine_of) -> None:  # type: ignore[no-untyped-def]
    crops = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    emb = engine_of.recognizer.embed(crops)
    assert emb.shape == (3, engine_of.recognizer.dim) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


# ---- fusion -----------------------------------------------------------------------------------------------------

def test_fusion_score_is_the_weighted_mean_of_the_two_cosines(lfw_images, devtest_pairs) -> None:  # type: ignore[no-untyped-def]
    from edgefx.faces.align import align
    from edgefx.faces.detection import select_face
    from edgefx.runtime.image import read_image

    fusion, sface, arcface = (recognizer_or_skip(name) for name in ("fusion", "sface", "arcface"))
    detector, _, _ = load_face_models(settings("sface"))
    crops = []
    for pair in [p for p in devtest_pairs if p.genuine][:2] + [p for p in devtest_pairs if not p.genuine][:2]:
        for rel in (pair.path_a, pair.path_b):
            photo = read_image(str(lfw_images / rel))
            face, _ = select_face(detector.detect(photo), photo.shape)
            crops.append(align(photo, face.landmarks)[0])
    crops = np.stack(crops)
    assert isinstance(fusion, Fusion) and fusion.weight == Settings.from_env().fusion_weight
    plain = Fusion(sface, arcface, weight=0.5)
    fused, mean_fused, a, b = fusion.embed(crops), plain.embed(crops), sface.embed(crops), arcface.embed(crops)
    assert fused.shape == (len(crops), sface.dim + arcface.dim)
    for i in range(0, len(crops), 2):
        s_a, s_b = cosine(a[i], a[i + 1]), cosine(b[i], b[i + 1])
        assert cosine(mean_fused[i], mean_fused[i + 1]) == pytest.approx((s_a + s_b) / 2, abs=1e-5)
        weighted = fusion.weight * s_a + (1 - fusion.weight) * s_b
        assert cosine(fused[i], fused[i + 1]) == pytest.approx(weighted, abs=1e-5)


def test_fusion_identity_holds_for_any_crops() -> None:
    fusion = recognizer_or_skip("fusion")
    crops = np.random.default_rng(1).integers(0, 256, (4, 112, 112, 3), dtype=np.uint8)
    parts = [part.embed(crops) for part in fusion.parts]
    fused = fusion.embed(crops)
    assert np.allclose(np.linalg.norm(fused, axis=1), 1.0, atol=1e-5)
    weights = (fusion.weight, 1 - fusion.weight)
    assert fused @ fused.T == pytest.approx(sum(w * (p @ p.T) for w, p in zip(weights, parts)), abs=1e-5)


class _Fixed:
    """A stand-in recognizer (no model): fixed unit rows, to test the fusion arithmetic alone."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows, self.dim, self.flip_tta, self.model = rows, rows.shape[1], False, object()

    def embed(self, crops: np.ndarray) -> np.ndarray:
        return self.rows[: len(crops)]


def test_a_fusion_weight_moves_the_score_between_the_two_models() -> None:
    rng = np.random.default_rng(3)
    u, v = (rng.normal(size=(2, d)) for d in (4, 6))
    u, v = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in (u, v))
    crops = np.zeros((2, 112, 112, 3), np.uint8)
    for w in (0.25, 0.5, 0.6):
        e = Fusion(_Fixed(u), _Fixed(v), weight=w).embed(crops)
        assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6)
        assert float(e[0] @ e[1]) == pytest.approx(w * float(u[0] @ u[1]) + (1 - w) * float(v[0] @ v[1]), abs=1e-6)
    for bad in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(BadArgument):
            Fusion(_Fixed(u), _Fixed(v), weight=bad)


# ---- calibration belongs to one recognizer ----------------------------------------------------------------------

def fitted_for(recognizer: str, precision: str = "fp32", detector: str = "mtcnn") -> Calibration:
    rng = np.random.default_rng(2)
    return Calibration.fit(recognizer, precision, rng.normal(0.6, 0.1, 50), rng.normal(0.05, 0.1, 50),
                           {"recognizer": recognizer, "detector": detector})


def test_a_calibration_refuses_another_recognizer() -> None:
    cal = fitted_for("arcface")
    assert cal.require("arcface", "fp32") is cal
    for other in ("sface", "fusion"):
        with pytest.raises(CalibrationMismatch) as err:
            cal.require(other, "fp32")
        assert isinstance(err.value, ModelError) and err.value.code == "calibration_mismatch"
    with pytest.raises(CalibrationMismatch):
        cal.require("arcface", "int8")
    with pytest.raises(CalibrationMismatch):
        cal.require("arcface", "fp32", "yunet")


def test_a_fusion_calibration_refuses_another_weight() -> None:
    cal = fitted_for("fusion")
    cal.meta["fusion_weight"] = 0.6
    assert cal.require_weight(0.6) is cal
    with pytest.raises(CalibrationMismatch, match="fusion weight of 0.6, not 0.5"):
        cal.require_weight(0.5)
    del cal.meta["fusion_weight"]  # a file from before the weight: fitted on the plain mean
    assert cal.require_weight(0.5) is cal
    with pytest.raises(CalibrationMismatch):
        cal.require_weight(0.6)
    assert fitted_for("sface").require_weight(None).recognizer == "sface"


def test_the_engine_refuses_a_fusion_calibration_of_another_weight() -> None:
    from edgefx.engine import Engine

    path = CALIBRATIONS / "fusion-fp32.json"
    if not path.is_file():
        pytest.skip(f"no fusion calibration at {path}: `python -m export all` with LFW")
    recognizer_or_skip("fusion")
    fitted = float(json.loads(path.read_text())["meta"].get("fusion_weight", 0.5))
    with pytest.raises(CalibrationMismatch):
        Engine(settings("fusion", precision="fp32", detector="mtcnn", fusion_weight=0.3 if fitted != 0.3 else 0.7),
               load_qa=False)


def test_a_renamed_calibration_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "calibration").mkdir()
    # arcface's calibration put where sface's belongs
    (tmp_path / "calibration" / "sface-fp32.json").write_text(json.dumps(fitted_for("arcface").to_dict()))
    with pytest.raises(CalibrationMismatch, match="fitted for recognizer arcface"):
        load_calibration(tmp_path, "sface", "fp32")
    # an old SFace file names its recognizer in `model` only: still recognised as SFace's
    old = fitted_for("sface").to_dict()
    old["meta"] = {}
    (tmp_path / "calibration" / "sface-fp32.json").write_text(json.dumps(old))
    assert load_calibration(tmp_path, "sface", "fp32").recognizer == "sface"
    (tmp_path / "calibration" / "fusion-fp32.json").write_text(json.dumps(old))
    with pytest.raises(CalibrationMismatch):
        load_calibration(tmp_path, "fusion", "fp32")


def test_the_engine_refuses_a_calibration_made_for_another_recognizer(tmp_path: Path) -> None:
    from edgefx.engine import Engine

    recognizer_or_skip("sface")
    source = CALIBRATIONS / "arcface-fp32.json"
    if not source.is_file():
        pytest.skip(f"no ArcFace calibration at {source}: `python -m export all` with LFW")
    for item in MODELS.iterdir():  # the real models, with sface's calibration swapped for arcface's
        if item.name != "calibration":
            (tmp_path / item.name).symlink_to(item)
    (tmp_path / "calibration").mkdir()
    shutil.copy(source, tmp_path / "calibration" / "sface-fp32.json")
    with pytest.raises(CalibrationMismatch) as err:
        Engine(settings("sface", models_dir=tmp_path, precision="fp32", detector="mtcnn"), load_qa=False)
    assert isinstance(err.value, ModelError)


def test_every_tracked_calibration_names_the_recognizer_of_its_file() -> None:
    files = sorted(CALIBRATIONS.glob("*.json"))
    face_files = [f for f in files if f.name.split("-")[0] in RECOGNIZERS]
    if not face_files:
        pytest.skip(f"no calibration files in {CALIBRATIONS}")
    for path in face_files:
        recognizer, precision, *detector = path.stem.split("-")
        cal = Calibration.from_dict(json.loads(path.read_text()))
        assert cal.require(recognizer, precision, detector[0] if detector else "mtcnn") is cal, path


def test_an_unknown_recognizer_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ModelError, match="unknown recognizer 'facenet'"):
        load_recognizer(Settings(recognizer="facenet"))
    monkeypatch.setenv("EDGEFX_RECOGNIZER", "facenet")
    with pytest.raises(ModelError):
        load_face_models(Settings.from_env())


def test_the_context_names_each_recognizer() -> None:
    from edgefx.qa.context import build_facts

    named = {}
    for recognizer in RECOGNIZERS:
        facts = build_facts({"match": True, "score": 0.6, "threshold": 0.4, "model": {"recognizer": recognizer}})
        named[recognizer] = next(f.answer for f in facts if f.key == "recognizer")
    # ArcFace keeps its id: the reader's training corpus says "arcface" (another name would retrain the reader)
    assert named == {"sface": "SFace", "arcface": "arcface", "fusion": "SFace + ArcFace fusion"}
