"""YuNet, the optional detector: the same faces as OpenCV's FaceDetectorYN, and a working verification path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefx.runtime.backend import load_model
from edgefx.evaluation.bench import yunet_path
from edgefx.runtime.config import Settings
from edgefx.runtime.errors import ModelMissing
from edgefx.runtime.image import read_image
from edgefx.faces.yunet import YuNet


@pytest.fixture(scope="module")
def yunet() -> YuNet:
    try:
        return YuNet(load_model("yunet", "fp32", backend="onnxruntime", threads=1))
    except ModelMissing as exc:
        pytest.skip(f"YuNet is not built: {exc}")


@pytest.fixture(scope="module")
def photos(lfw_images: Path, devtest_pairs) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    paths = sorted({p.path_a for p in devtest_pairs})[:60]
    return [read_image(str(lfw_images / p)) for p in paths]


def test_same_faces_as_opencv(yunet: YuNet, photos: list[np.ndarray]) -> None:
    if not yunet_path().is_file():
        pytest.skip(f"the shipped YuNet is not at {yunet_path()}: `python -m export all` installs it")
    reference = cv2.FaceDetectorYN.create(str(yunet_path()), "", (320, 320), 0.9, 0.3, 5000)
    strict = YuNet(yunet.net, score_threshold=0.9)  # OpenCV's default, as the peer runs it
    found = 0
    for rgb in photos:
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        reference.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, theirs = reference.detect(bgr)
        theirs = np.zeros((0, 15), np.float32) if theirs is None else theirs[np.argsort(-theirs[:, 14])]
        ours = strict.detect(rgb)
        assert len(ours) == len(theirs)
        for face, row in zip(ours, theirs):
            box = np.array([row[0], row[1], row[0] + row[2], row[1] + row[3]])
            np.testing.assert_allclose(face.box, box, atol=0.01)
            np.testing.assert_allclose(face.landmarks, row[4:14].reshape(5, 2), atol=0.01)
            assert face.score == pytest.approx(float(row[14]), abs=1e-4)
        found += len(ours) > 0
    assert found >= 0.9 * len(photos)


def test_landmarks_follow_the_face_order(yunet: YuNet, photos: list[np.ndarray]) -> None:
    for rgb in photos[:20]:
        marks = yunet.detect(rgb)[0].landmarks
        assert marks[0, 0] < marks[2, 0] < marks[1, 0]  # image-left eye, nose, image-right eye
        assert marks[3, 0] < marks[4, 0] and marks[3, 1] > marks[0, 1]  # mouth corners below the eyes


def test_large_photo_is_shrunk_and_mapped_back(yunet: YuNet, photos: list[np.ndarray]) -> None:
    big = cv2.resize(photos[0], (2000, 1600), interpolation=cv2.INTER_CUBIC)  # beyond MAX_SIDE: shrunk to 640x512
    shrunk = cv2.resize(big, (640, 512), interpolation=cv2.INTER_AREA)
    (face,), (reference,) = yunet.detect(big), yunet.detect(shrunk)
    np.testing.assert_allclose(face.landmarks, reference.landmarks * 2000 / 640, atol=1e-3)
    np.testing.assert_allclose(face.box, reference.box * 2000 / 640, atol=1e-3)


def test_engine_verifies_with_yunet(matched_pair_bytes, mismatched_pair_bytes) -> None:  # type: ignore[no-untyped-def]
    from edgefx.engine import Engine

    try:
        engine = Engine(Settings.from_env(detector="yunet"), load_qa=False)
    except ModelMissing as exc:
        pytest.skip(f"YuNet or its calibration is not built: {exc}")
    assert engine.model_info()["detector"] == "yunet"
    assert engine.calibration.meta["detector"] == "yunet"
    assert engine.verify(*matched_pair_bytes).match
    assert not engine.verify(*mismatched_pair_bytes).match


def test_unknown_detector_is_refused() -> None:
    from edgefx.faces.loading import load_face_models
    from edgefx.runtime.errors import ModelError

    with pytest.raises(ModelError, match="unknown detector"):
        load_face_models(Settings.from_env(detector="haar"))
