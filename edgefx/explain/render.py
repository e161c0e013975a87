"""Heatmap PNGs: saliency overlays on the photo (or the aligned crop) and the pair summary figure (cv2 only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from edgefx.faces.align import transform_points, invert, warp_to_photo
from edgefx.runtime.errors import InvalidRequest
from edgefx.explain.regions import REGIONS, region_labels
from edgefx.explain.saliency import LABELS, METHODS
from edgefx.explain.windows import CROP_SIZE

DEFAULT_ALPHA = 0.5
OUTLINE_RGB = (255, 255, 255)
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _check_rgb(image: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InvalidRequest(f"{what} must be an RGB HxWx3 image, got shape {arr.shape}")
    return arr.astype(np.uint8) if arr.dtype != np.uint8 else arr


def colorize(saliency: np.ndarray) -> np.ndarray:
    """[0, 1] map -> RGB uint8 with the JET colour map (blue = unimportant, red = important)."""
    levels = np.clip(np.nan_to_num(np.asarray(saliency, np.float32)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.applyColorMap(levels, cv2.COLORMAP_JET)[:, :, ::-1]


def blend(image: np.ndarray, saliency: np.ndarray, weight: np.ndarray | float = DEFAULT_ALPHA) -> np.ndarray:
    """image * (1 - weight) + colour(saliency) * weight; `weight` may be a per-pixel map (0 outside the face)."""
    image = _check_rgb(image, "image")
    if saliency.shape != image.shape[:2]:
        raise InvalidRequest(f"saliency map {saliency.shape} and image {image.shape[:2]} differ in size")
    w = np.asarray(weight, np.float32)
    w = w[..., None] if w.ndim == 2 else w
    out = image.astype(np.float32) * (1.0 - w) + colorize(saliency).astype(np.float32) * w
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _region_contours(labels: np.ndarray) -> list[np.ndarray]:
    """Outlines of the regions in crop pixels, (N, 2) float arrays, upsampled so they are smooth."""
    scale = 4
    big = cv2.resize(labels, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    out = []
    for value in range(1, len(REGIONS) + 1):
        mask = (big == value).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        out += [c.reshape(-1, 2).astype(np.float64) / scale for c in contours if len(c) > 2]
    return out


def _draw_outlines(image: np.ndarray, contours: Sequence[np.ndarray], matrix: np.ndarray | None) -> np.ndarray:
    """Draws crop-space contours on the image, mapped by `matrix` (crop -> image) when given."""
    out = image.copy()
    thickness = max(1, round(min(image.shape[:2]) / 250))
    for c in contours:
        pts = transform_points(c, matrix) if matrix is not None else c
        cv2.polylines(out, [np.round(pts * 16).astype(np.int32)], True, OUTLINE_RGB, thickness, cv2.LINE_AA, shift=4)
    return out


def overlay_on_photo(photo: np.ndarray, map112: np.ndarray, matrix: np.ndarray, alpha: float = DEFAULT_ALPHA,
                     outlines: bool = False, labels: np.ndarray | None = None) -> np.ndarray:
    """The crop's saliency map drawn back onto the full photo through the inverse alignment (RGB uint8).

    `matrix` is the 2x3 photo -> crop transform from `align`; pixels outside the crop are left as they are.
    """
    photo = _check_rgb(photo, "photo")
    sal = warp_to_photo(np.asarray(map112, np.float32), matrix, photo.shape)
    inside = warp_to_photo(np.ones((112, 112), np.float32), matrix, photo.shape)
    out = blend(photo, sal, alpha * inside)
    if outlines:
        out = _draw_outlines(out, _region_contours(region_labels() if labels is None else labels), invert(matrix))
    return out


def overlay_on_crop(crop: np.ndarray, map112: np.ndarray, alpha: float = DEFAULT_ALPHA, outlines: bool = False,
                    labels: np.ndarray | None = None, size: int = 112) -> np.ndarray:
    """The saliency map over the aligned crop, resized to size x size (RGB uint8)."""
    crop = _check_rgb(crop, "crop")
    scale = size / crop.shape[0]
    big = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
    sal = cv2.resize(np.asarray(map112, np.float32), (size, size), interpolation=cv2.INTER_LINEAR)
    out = blend(big, sal, alpha)
    if outlines:
        m = np.array([[scale, 0, 0], [0, scale, 0]], np.float64)
        out = _draw_outlines(out, _region_contours(region_labels() if labels is None else labels), m)
    return out


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float, color=(20, 20, 20), thick: int = 1) -> None:
    cv2.putText(img, text, org, _FONT, scale, color, thick, cv2.LINE_AA)


def summary_figure(crops: Mapping[str, np.ndarray], maps: Mapping[str, Mapping[str, np.ndarray]], score: float,
                   threshold: float, match: bool, confidence: float | None = None,
                   methods: Sequence[str] | None = None, tile: int = 160, outlines: bool = True,
                   labels: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """Rows = faces (a, b), columns = the aligned face then one overlay per method; caption = decision + score."""
    images = [i for i in ("a", "b") if i in crops]
    methods = [m for m in (methods or METHODS) if all(m in maps.get(i, {}) for i in images)]
    if not images or not methods:
        raise InvalidRequest("the summary figure needs at least one face and one method with maps")
    pad, head, left, foot = 8, 28, 28, 44
    width = left + (len(methods) + 1) * (tile + pad) + pad
    height = head + len(images) * (tile + pad) + foot
    fig = np.full((height, width, 3), 255, np.uint8)
    for col, name in enumerate(["face"] + [LABELS[m] for m in methods]):
        x = left + pad + col * (tile + pad)
        _text(fig, name, (x + tile // 2 - 9 * len(name) // 2, head - 9), 0.6, thick=2 if col else 1)
    for row, image in enumerate(images):
        y = head + row * (tile + pad)
        _text(fig, image.upper(), (6, y + tile // 2 + 8), 0.7, thick=2)
        crop = _check_rgb(crops[image], f"crop {image}")
        fig[y : y + tile, left + pad : left + pad + tile] = cv2.resize(crop, (tile, tile), interpolation=cv2.INTER_LINEAR)
        lab = None if labels is None else labels.get(image)
        for col, m in enumerate(methods, start=1):
            x = left + pad + col * (tile + pad)
            fig[y : y + tile, x : x + tile] = overlay_on_crop(crop, maps[image][m], outlines=outlines, labels=lab,
                                                              size=tile)
    decision = "MATCH" if match else "NO MATCH"
    caption = f"{decision}   score {score:.3f}   threshold {threshold:.3f}"
    if confidence is not None:
        caption += f"   confidence {confidence:.3f}"
    color = (0, 120, 0) if match else (170, 0, 0)
    _text(fig, caption, (left + pad, height - foot + 22), 0.6, color=color, thick=2)
    _text(fig, "red = more important for the score; A explained against B, B against A", (left + pad, height - 8),
          0.42)
    return fig


REGION_COLOURS = ((255, 255, 255), (255, 200, 0), (255, 120, 0), (0, 255, 255), (0, 160, 255), (255, 0, 255),
                  (0, 255, 0), (120, 255, 120), (255, 60, 60), (200, 200, 120))  # RGB, in REGIONS order


def region_sheet(crops: Sequence[np.ndarray], labels: Sequence[np.ndarray], landmarks: Sequence[np.ndarray],
                 captions: Sequence[str], columns: int = 5, tile: int = 224) -> np.ndarray:
    """Contact sheet for checking the region geometry: each aligned crop with every region's outline in its own
    colour and the 5 landmarks as red dots (RGB uint8)."""
    if not crops or not len(crops) == len(labels) == len(landmarks) == len(captions):
        raise InvalidRequest("the region sheet needs as many crops, labels, landmarks and captions, at least one")
    rows = -(-len(crops) // columns)
    head = 18
    sheet = np.full((rows * (tile + head), columns * tile, 3), 255, np.uint8)
    scale = tile / CROP_SIZE
    m = np.array([[scale, 0, 0], [0, scale, 0]], np.float64)
    for n, (crop, lab, pts, caption) in enumerate(zip(crops, labels, landmarks, captions)):
        img = cv2.resize(_check_rgb(crop, "crop"), (tile, tile), interpolation=cv2.INTER_LINEAR)
        for value, colour in enumerate(REGION_COLOURS, start=1):
            contours = _region_contours(np.where(lab == value, value, 0).astype(np.uint8))
            for c in contours:
                cv2.polylines(img, [np.round(transform_points(c, m) * 16).astype(np.int32)], True, colour, 1,
                              cv2.LINE_AA, shift=4)
        for x, y in np.asarray(pts, np.float64) * scale:
            cv2.circle(img, (round(x), round(y)), 2, (255, 0, 0), -1, cv2.LINE_AA)
        y0, x0 = (n // columns) * (tile + head), (n % columns) * tile
        sheet[y0 + head : y0 + head + tile, x0 : x0 + tile] = img
        _text(sheet, caption, (x0 + 3, y0 + 13), 0.38)
    return sheet


def to_png_bytes(rgb: np.ndarray) -> bytes:
    """RGB uint8 image -> PNG file bytes."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(_check_rgb(rgb, "image"), cv2.COLOR_RGB2BGR))
    if not ok:
        raise InvalidRequest("PNG encoding failed")
    return buf.tobytes()
