"""Heatmap PNGs decode, have the input photo's size, and put the colour where the map is."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefx.faces.align import align
from edgefx.runtime.errors import InvalidRequest
from edgefx.explain.regions import TEMPLATE
from edgefx.explain.render import colorize, overlay_on_crop, overlay_on_photo, summary_figure, to_png_bytes

METHODS = ("single_removal", "greedy_removal", "single_aggregation", "greedy_aggregation", "average")


def _decode(png: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def _blob(cx: float, cy: float) -> np.ndarray:
    yy, xx = np.mgrid[0:112, 0:112].astype(np.float32)
    return np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 8.0**2))


@pytest.mark.parametrize("shape", [(250, 250), (180, 320)])
def test_photo_overlay_png_decodes_with_the_photo_size(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (*shape, 3), dtype=np.uint8)
    scale = shape[0] / 250
    landmarks = (TEMPLATE + 60) * scale
    crop, matrix = align(photo, landmarks)
    out = overlay_on_photo(photo, _blob(38.3, 51.7), matrix, outlines=True)
    decoded = _decode(to_png_bytes(out))
    assert decoded.shape == (*shape, 3)
    # far outside the face the photo is untouched; on the subject's right eye (image-left) the colour is red
    assert np.array_equal(out[0, -1], photo[0, -1])
    ex, ey = np.round(landmarks[0]).astype(int)
    assert out[ey, ex, 0] > out[ey, ex, 2]


def test_lfw_photo_overlay(lfw_images: Path, devtest_pairs) -> None:  # type: ignore[no-untyped-def]
    bgr = cv2.imread(str(lfw_images / devtest_pairs[0].path_a))
    photo = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    crop, matrix = align(photo, TEMPLATE + 69)  # LFW deep-funneled faces sit near the centre
    png = to_png_bytes(overlay_on_photo(photo, _blob(56, 70), matrix))
    assert _decode(png).shape == photo.shape


def test_colorize_direction_and_crop_overlay() -> None:
    c = colorize(np.array([[0.0, 1.0]], np.float32))
    assert c[0, 0, 2] > c[0, 0, 0] and c[0, 1, 0] > c[0, 1, 2]  # 0 is blue, 1 is red (RGB)
    crop = np.full((112, 112, 3), 128, np.uint8)
    out = overlay_on_crop(crop, _blob(56, 56), size=224, outlines=True)
    assert out.shape == (224, 224, 3)


def test_summary_figure_has_both_faces_and_all_methods() -> None:
    crops = {i: np.full((112, 112, 3), 100, np.uint8) for i in ("a", "b")}
    maps = {i: {m: _blob(30 + 10 * k, 56) for k, m in enumerate(METHODS)} for i in ("a", "b")}
    fig = summary_figure(crops, maps, score=0.61, threshold=0.36, match=True, confidence=0.99, tile=120)
    decoded = _decode(to_png_bytes(fig))
    assert decoded.shape[1] > 6 * 120 and decoded.shape[0] > 2 * 120
    fewer = summary_figure(crops, maps, 0.1, 0.36, False, methods=["single_removal"], tile=120)
    assert fewer.shape[1] < fig.shape[1]


def test_bad_inputs_are_typed_errors() -> None:
    with pytest.raises(InvalidRequest):
        overlay_on_photo(np.zeros((10, 10)), _blob(56, 56), np.eye(2, 3))
    with pytest.raises(InvalidRequest):
        summary_figure({}, {}, 0.5, 0.3, True)
    with pytest.raises(InvalidRequest):
        to_png_bytes(np.zeros((4, 4), np.uint8))
