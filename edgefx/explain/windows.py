"""The occlusion windows the saliency maps are built from: a smooth grid of Gaussian windows, the neutral fill, and
the compositing of a crop with its fill; maps are window weights painted back onto the 112x112 crop."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from edgefx.runtime.errors import InvalidRequest

CROP_SIZE = 112
DEFAULT_GRID = 5
DEFAULT_SIGMA_CELLS = 0.5
BLUR_SIGMA = 8.0


def window_centers(grid: int, corners: bool = False) -> np.ndarray:
    """(W, 2) window centres (x, y) at the cell centres of a regular grid over the crop, row by row.

    Without `corners` the four corner cells are left out: in the aligned crop they hold background
    and hair, and on DevTrain they carried 1/13 (S-) and 1/6 (S+) of an average window's gain.
    """
    cell = CROP_SIZE / grid
    c = (np.arange(grid, dtype=np.float32) + 0.5) * cell
    ys, xs = np.meshgrid(c, c, indexing="ij")
    centers = np.stack([xs.ravel(), ys.ravel()], axis=1)
    if not corners and grid > 2:
        centers = np.delete(centers, [0, grid - 1, grid * (grid - 1), grid * grid - 1], axis=0)
    return centers


def default_sigma(grid: int) -> float:
    return DEFAULT_SIGMA_CELLS * CROP_SIZE / grid


def gaussian_windows(grid: int, sigma: float, corners: bool = False) -> np.ndarray:
    """(W, 112, 112) float32 Gaussian windows with peak 1 (read-only, cached), in `window_centers` order."""
    return _windows(int(grid), float(sigma), bool(corners))


@lru_cache(maxsize=8)
def _windows(grid: int, sigma: float, corners: bool) -> np.ndarray:
    if grid < 2 or grid > 16:
        raise InvalidRequest(f"grid must be between 2 and 16, got {grid}")
    if not sigma > 0:
        raise InvalidRequest(f"sigma must be positive, got {sigma}")
    centers = window_centers(grid, corners)
    px = np.arange(CROP_SIZE, dtype=np.float32) + 0.5
    gx = np.exp(-((px[None, :] - centers[:, 0:1]) ** 2) / (2 * sigma**2))
    gy = np.exp(-((px[None, :] - centers[:, 1:2]) ** 2) / (2 * sigma**2))
    windows = (gy[:, :, None] * gx[:, None, :]).astype(np.float32)
    windows.setflags(write=False)
    return windows


def neutral_fill(crop: np.ndarray, fill: str) -> np.ndarray:
    """The image a removed window blends to: a heavy blur of the crop, or its mean colour."""
    crop = np.asarray(crop, dtype=np.float32)
    if fill == "blur":
        return cv2.GaussianBlur(crop, (0, 0), BLUR_SIGMA, borderType=cv2.BORDER_REFLECT)
    if fill == "mean":
        return np.broadcast_to(crop.mean(axis=(0, 1), keepdims=True), crop.shape).astype(np.float32)
    raise InvalidRequest(f"fill must be 'blur' or 'mean', got {fill!r}")


def windows_to_map(weights: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Sum of windows weighted by their (clipped at 0) credit over the window coverage: 112x112.

    The coverage is floored at half its maximum, so pixels the windows barely probe (the left-out
    corners, the crop border) fade to 0 instead of copying their neighbours' credit.
    """
    w = np.clip(np.asarray(weights, dtype=np.float32), 0.0, None)
    coverage = windows.sum(axis=0)
    return np.tensordot(w, windows, axes=1) / np.maximum(coverage, 0.5 * float(coverage.max()))


def normalize(m: np.ndarray) -> np.ndarray:
    """Min-max to [0, 1]; a flat map becomes all zeros."""
    m = np.asarray(m, dtype=np.float32)
    lo, hi = float(m.min()), float(m.max())
    if hi - lo < 1e-12:
        return np.zeros_like(m, dtype=np.float32)
    return ((m - lo) / (hi - lo)).astype(np.float32)


def window_scores(saliency: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Mean saliency under each window (window-weighted): used to order windows by a map."""
    return np.tensordot(windows, saliency, axes=([1, 2], [0, 1])) / windows.sum(axis=(1, 2))


def composite(base: np.ndarray, other: np.ndarray, keep: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """other + (base - other) * keep, broadcast over a stack of keep masks (n, 112, 112) -> (n, 112, 112, 3)."""
    if out is None:
        out = np.empty((*keep.shape, 3), np.float32)
    np.multiply(keep[..., None], base - other, out=out)
    out += other
    return out
