"""5-point similarity alignment of a face to the ArcFace 112x112 template, and back to the photo."""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from edgefx.runtime.errors import InvalidImage

TEMPLATE_SIZE = 112
# insightface's template (x, y) for a 112x112 crop, in the order of `Face.landmarks`:
# image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)
ARCFACE_TEMPLATE.setflags(write=False)


def similarity_transform(src_pts: np.ndarray, dst_pts: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation (no reflection) taking src to dst, as 2x3.

    Umeyama (1991), as insightface does: it minimises the squared landmark residual in the crop,
    which is what the recogniser was trained with.
    """
    src = np.asarray(src_pts, np.float64).reshape(-1, 2)
    dst = np.asarray(dst_pts, np.float64).reshape(-1, 2)
    if len(src) != len(dst) or len(src) < 2:
        raise ValueError(f"need two matching sets of >= 2 points, got {len(src)} and {len(dst)}")
    if not (np.isfinite(src).all() and np.isfinite(dst).all()):
        raise ValueError("landmarks must be finite numbers")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    src_var = (src_c**2).sum() / len(src)
    if src_var < 1e-12:
        raise ValueError("the source points coincide; no transform is defined")
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    sign = np.ones(2)
    if np.linalg.det(cov) < 0:
        sign[-1] = -1.0  # the best fit would mirror the face: take the best proper rotation instead
    rotation = u @ np.diag(sign) @ vt
    scale = float((s * sign).sum() / src_var)
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def template(size: int = TEMPLATE_SIZE) -> np.ndarray:
    """The ArcFace template for a size x size crop."""
    return ARCFACE_TEMPLATE * np.float32(size / TEMPLATE_SIZE)


def align(rgb: np.ndarray, landmarks: np.ndarray, size: int = TEMPLATE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """The face warped onto the template: (crop uint8 size x size x 3, M 2x3 taking photo to crop pixels)."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        desc = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise InvalidImage(f"alignment needs an RGB uint8 HxWx3 array, got {desc}")
    pts = np.asarray(landmarks, np.float64)
    if pts.shape != (5, 2):
        raise ValueError(f"need 5 (x, y) landmarks, got shape {pts.shape}")
    matrix = similarity_transform(pts, template(size))
    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return crop, matrix


def invert(matrix: np.ndarray) -> np.ndarray:
    """The 2x3 transform going the other way (crop to photo for an `align` matrix)."""
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """(N, 2) points mapped by a 2x3 affine transform."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    m = np.asarray(matrix, np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def warp_to_photo(map_crop: np.ndarray, matrix: np.ndarray, photo_shape: Sequence[int],
                  fill: float = 0.0) -> np.ndarray:
    """A float map over the aligned crop (e.g. a 112x112 heatmap) drawn back in photo coordinates.

    `matrix` is the one `align` returned (photo to crop); photo pixels outside the crop get `fill`.
    """
    values = np.asarray(map_crop, np.float32)
    if values.ndim != 2:
        raise ValueError(f"need a 2-D map, got shape {values.shape}")
    height, width = int(photo_shape[0]), int(photo_shape[1])
    # WARP_INVERSE_MAP: each photo pixel looks up its crop position through `matrix` itself.
    return cv2.warpAffine(values, np.asarray(matrix, np.float64), (width, height),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=float(fill))
