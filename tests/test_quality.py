"""Photo quality: the pose formula on synthetic landmarks, and real LFW photos degraded until each issue is flagged."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefx.faces.align import ARCFACE_TEMPLATE, align
from edgefx.faces.detection import select_face
from edgefx.faces.quality import LIMITS, NOSE_DEPTH, Quality, cut_fraction, head_pose, issues, light_and_sharpness, \
    measure
from edgefx.runtime.config import Settings
from edgefx.runtime.errors import EdgefxError
from edgefx.runtime.image import read_image

# A generic head in units of the inter-ocular distance (x right, y down, z towards the camera), in Face order.
HEAD = np.array([[-0.5, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.55, NOSE_DEPTH], [-0.4, 1.0, 0.0], [0.4, 1.0, 0.0]])
# A visibly turned LFW face (three-quarter view, nose towards the image's left), checked by eye.
TURNED = "Bill_Frist/Bill_Frist_0002.jpg"  # yaw -44 deg


def _landmarks(yaw: float = 0.0, roll: float = 0.0, scale: float = 60.0, at: tuple = (100.0, 80.0)) -> np.ndarray:
    y, r = math.radians(yaw), math.radians(roll)
    turn = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    tilt = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])  # clockwise as seen (y down)
    flat = (HEAD @ turn.T)[:, :2] @ tilt.T
    return (flat * scale + np.array(at)).astype(np.float32)


@pytest.mark.parametrize("yaw", [-50.0, -30.0, -10.0, 0.0, 15.0, 40.0])
@pytest.mark.parametrize("roll", [-30.0, 0.0, 20.0])
def test_pose_recovers_the_generic_head(yaw: float, roll: float) -> None:
    got_yaw, got_roll = head_pose(_landmarks(yaw, roll))
    assert got_yaw == pytest.approx(yaw, abs=0.5)
    assert got_roll == pytest.approx(roll, abs=0.5)


def test_pose_signs_scale_and_mirror() -> None:
    yaw, roll = head_pose(_landmarks(25.0, 10.0))
    assert yaw > 0 and roll > 0  # nose to the image's right; the image-right eye lower
    assert head_pose(_landmarks(25.0, 10.0, scale=7.0, at=(3.0, 900.0))) == pytest.approx((yaw, roll), abs=1e-3)
    mirrored = _landmarks(25.0, 10.0)[[1, 0, 2, 4, 3]] * np.array([-1.0, 1.0], np.float32)  # flip x, swap sides
    assert head_pose(mirrored) == pytest.approx((-yaw, -roll), abs=1e-4)
    assert head_pose(ARCFACE_TEMPLATE) == pytest.approx((0.0, 0.0), abs=1.0)  # the template is frontal
    assert head_pose(np.zeros((5, 2))) == (0.0, 0.0)  # degenerate: no inter-ocular distance


def test_cut_fraction_and_light_measures() -> None:
    assert cut_fraction(ARCFACE_TEMPLATE, (112, 112, 3)) == 0.0
    assert 0.3 < cut_fraction(ARCFACE_TEMPLATE - np.float32([50, 0]), (112, 112, 3)) < 0.5
    crop = np.random.default_rng(0).integers(60, 200, (112, 112, 3)).astype(np.uint8)
    bright, contrast, sharp = light_and_sharpness(crop)
    dim_b, dim_c, dim_s = light_and_sharpness((crop * 0.5).astype(np.uint8))
    assert dim_b == pytest.approx(bright / 2, rel=0.02) and dim_c == pytest.approx(contrast / 2, rel=0.03)
    assert dim_s == pytest.approx(sharp, rel=0.05)  # exposure does not move sharpness
    q = Quality(100.0, 0.0, 0.0, 1.0, 120.0, 40.0, False, 0.0, 0)
    assert issues(q) == [] and q.to_dict()["issues"] == []
    bad = Quality(10.0, 80.0, -80.0, 0.0, 5.0, 1.0, True, 0.9, 2)
    assert issues(bad) == ["several_faces", "cut", "small", "turned", "tilted", "dark", "low_contrast", "blurred"]


# --- real photos ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detector():  # type: ignore[no-untyped-def]
    from edgefx.faces.loading import load_detector

    try:
        return load_detector(Settings.from_env())
    except EdgefxError as exc:
        pytest.skip(f"the detector's models are not built: {exc}")


def _quality(detector, photo: np.ndarray) -> Quality:  # type: ignore[no-untyped-def]
    faces = detector.detect(photo)
    assert faces, "no face found"
    face, others = select_face(faces, photo.shape)
    return measure(photo, face, others, align(photo, face.landmarks)[0])


@pytest.fixture(scope="module")
def portraits(detector, lfw_images: Path, devtest_pairs) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """The first three DevTest photos of different people with no quality issue."""
    out, seen = [], set()
    for pair in devtest_pairs:
        name = pair.path_a.split("/")[0]
        if name in seen:
            continue
        seen.add(name)
        photo = read_image(str(lfw_images / pair.path_a))
        if not issues(_quality(detector, photo)):
            out.append(photo)
        if len(out) == 3:
            return out
    pytest.fail("fewer than three DevTest photos without an issue")


def _rotate(photo: np.ndarray, degrees: float) -> np.ndarray:
    m = cv2.getRotationMatrix2D((photo.shape[1] / 2, photo.shape[0] / 2), -degrees, 1.0)
    return cv2.warpAffine(photo, m, (photo.shape[1], photo.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def _cut(photo: np.ndarray, detector) -> np.ndarray:  # type: ignore[no-untyped-def]
    box = detector.detect(photo)[0].box
    return np.ascontiguousarray(photo[:, int(box[0] + 0.3 * (box[2] - box[0])):])


DEGRADE = {
    "small": lambda p, d: cv2.resize(p, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA),
    "dark": lambda p, d: (p * 0.12).astype(np.uint8),
    "bright": lambda p, d: np.clip(p * 2.0, 0, 255).astype(np.uint8),
    "blurred": lambda p, d: cv2.GaussianBlur(p, (0, 0), 3.0),
    "tilted": lambda p, d: _rotate(p, 35.0),
    "cut": _cut,
    "several_faces": lambda p, d: np.hstack([p, p[:, ::-1]]),
}


@pytest.mark.parametrize("issue", list(DEGRADE))
def test_degraded_photos_are_flagged(detector, portraits, issue: str) -> None:  # type: ignore[no-untyped-def]
    for photo in portraits:
        got = issues(_quality(detector, DEGRADE[issue](photo, detector)))
        assert issue in got, (issue, got)


def test_a_turned_face_is_flagged_with_its_side(detector, lfw_images: Path) -> None:  # type: ignore[no-untyped-def]
    if not (lfw_images / TURNED).is_file():
        pytest.skip(f"{TURNED} is not in this LFW copy")
    photo = read_image(str(lfw_images / TURNED))
    q, mirrored = _quality(detector, photo), _quality(detector, np.ascontiguousarray(photo[:, ::-1]))
    assert "turned" in issues(q) and "turned" in issues(mirrored)
    assert q.yaw_deg < 0 < mirrored.yaw_deg  # the nose points to the image's left, then to its right
    assert abs(q.yaw_deg + mirrored.yaw_deg) < 5.0
