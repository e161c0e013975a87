"""Facial regions of the aligned 112x112 crop, and the explainability table (region shares, ranks, agreement).

The ten regions are drawn in the ArcFace template from its five landmarks (eye distance d = 35.2 px)
and, for a face whose own aligned landmarks are given, moved onto them by the similarity transform
template -> landmarks. Left/right are the subject's own: the image-left eye is the subject's right eye.
Each pixel belongs to at most one region (eyes over eyebrows over nose/mouth over cheeks/chin/forehead);
temples, hair and background belong to none, so shares are of the saliency mass inside the ten regions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from itertools import combinations

import cv2
import numpy as np

from edgefx.faces.align import ARCFACE_TEMPLATE, similarity_transform
from edgefx.runtime.errors import InvalidRequest

CROP_SIZE = 112
TEMPLATE = ARCFACE_TEMPLATE
REGIONS = (
    "forehead", "left_eyebrow", "right_eyebrow", "left_eye", "right_eye",
    "nose", "left_cheek", "right_cheek", "mouth", "chin",
)
SIDES = "left/right are the subject's own"
AGREEMENT_METHODS = ("single_removal", "greedy_removal", "single_aggregation", "greedy_aggregation")


def _mirror(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Mirror template points about the face's vertical axis (x = 56)."""
    return [(CROP_SIZE - x, y) for x, y in points]


_RIGHT_CHEEK = [(14.0, 58.0), (47.0, 58.0), (45.0, 80.0), (35.0, 88.0), (32.0, 104.0), (18.0, 100.0)]
# (region, kind, geometry in template pixels); painted in this order, later ones win overlaps
_SHAPES: tuple[tuple[str, str, object], ...] = (
    ("forehead", "polygon", [(20.0, 12.0), (92.0, 12.0), (90.0, 35.0), (22.0, 35.0)]),  # below the hairline
    ("right_cheek", "polygon", _RIGHT_CHEEK),  # image-left
    ("left_cheek", "polygon", _mirror(_RIGHT_CHEEK)),
    ("chin", "polygon", [(34.0, 100.0), (78.0, 100.0), (74.0, 112.0), (38.0, 112.0)]),
    ("nose", "polygon", [(51.5, 50.0), (60.5, 50.0), (67.0, 78.0), (45.0, 78.0)]),
    ("mouth", "ellipse", ((56.1, 92.3), (20.5, 8.0))),
    ("right_eyebrow", "ellipse", ((37.5, 40.0), (12.5, 4.5))),  # image-left
    ("left_eyebrow", "ellipse", ((74.3, 39.8), (12.5, 4.5))),
    ("right_eye", "ellipse", ((38.3, 51.7), (10.5, 5.6))),  # image-left
    ("left_eye", "ellipse", ((73.5, 51.5), (10.5, 5.6))),
)


@lru_cache(maxsize=1)
def _template_labels() -> np.ndarray:
    labels = np.zeros((CROP_SIZE, CROP_SIZE), np.uint8)
    shift = 4  # sub-pixel precision for cv2 drawing
    for name, kind, geom in _SHAPES:
        value = REGIONS.index(name) + 1
        if kind == "polygon":
            pts = np.round(np.asarray(geom, np.float64) * (1 << shift)).astype(np.int32)
            cv2.fillPoly(labels, [pts], value, lineType=cv2.LINE_8, shift=shift)
        else:
            (cx, cy), (ax, ay) = geom  # type: ignore[misc]
            center = (round(cx * (1 << shift)), round(cy * (1 << shift)))
            axes = (round(ax * (1 << shift)), round(ay * (1 << shift)))
            cv2.ellipse(labels, center, axes, 0, 0, 360, value, -1, lineType=cv2.LINE_8, shift=shift)
    labels.setflags(write=False)
    return labels


def region_labels(landmarks: np.ndarray | None = None) -> np.ndarray:
    """112x112 uint8: 0 = no region, i + 1 = REGIONS[i]. `landmarks`: the face's 5 points in the crop."""
    if landmarks is None:
        return _template_labels()
    pts = np.asarray(landmarks, np.float32)
    if pts.shape != (5, 2) or not np.isfinite(pts).all():
        raise InvalidRequest(f"landmarks must be 5 finite (x, y) points, got shape {pts.shape}")
    if np.linalg.norm(pts[1] - pts[0]) < 2.0:
        raise InvalidRequest("landmarks are degenerate: the eyes are less than 2 px apart")
    if np.allclose(pts, TEMPLATE, atol=1e-3):
        return _template_labels()
    try:
        matrix = similarity_transform(TEMPLATE, pts)
    except ValueError as exc:
        raise InvalidRequest(f"landmarks are degenerate: {exc}") from None
    return cv2.warpAffine(_template_labels(), matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def region_masks(labels: np.ndarray | None = None) -> np.ndarray:
    """(10, 112, 112) bool, one mask per region in REGIONS order."""
    labels = _template_labels() if labels is None else labels
    return labels[None] == np.arange(1, len(REGIONS) + 1, dtype=np.uint8)[:, None, None]


def region_mass(saliency: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
    """Saliency mass in each region (10,), saliency clipped at 0."""
    labels = _template_labels() if labels is None else labels
    sal = np.clip(np.asarray(saliency, np.float64), 0.0, None)
    if sal.shape != labels.shape:
        raise InvalidRequest(f"saliency map shape {sal.shape} differs from the region labels {labels.shape}")
    return np.bincount(labels.ravel(), weights=sal.ravel(), minlength=len(REGIONS) + 1)[1:]


def shares_percent(mass: np.ndarray) -> np.ndarray:
    """Percent shares with one decimal that sum to exactly 100 (largest remainder); a zero map -> equal shares."""
    mass = np.asarray(mass, np.float64)
    total = mass.sum()
    raw = np.full(len(mass), 1000.0 / len(mass)) if total <= 0 else mass / total * 1000.0
    tenths = np.floor(raw).astype(np.int64)
    short = 1000 - int(tenths.sum())
    order = np.lexsort((np.arange(len(raw)), -(raw - tenths)))
    tenths[order[:short]] += 1
    return tenths / 10.0


def ranks(mass: np.ndarray) -> np.ndarray:
    """1 = the region with the most mass; ties keep the REGIONS order."""
    order = np.lexsort((np.arange(len(mass)), -np.asarray(mass, np.float64)))
    out = np.empty(len(mass), np.int64)
    out[order] = np.arange(1, len(mass) + 1)
    return out


def explainability_table(
    maps: Mapping[str, Mapping[str, np.ndarray]],
    labels: Mapping[str, np.ndarray] | None = None,
) -> list[dict[str, object]]:
    """Rows {method, image, region, share, rank, density} for every image x method x region.

    `share`: % of the map's mass inside the ten regions (rank 1 = largest); it grows with a region's
    area (the forehead is 8x an eye). `density`: the same per pixel of region, also summing to 100,
    for "which part is most important per unit area".

    `maps` is image -> method -> 112x112 map; `labels` optionally gives per-image region labels
    (from `region_labels(aligned_landmarks)`), else the template regions are used.
    """
    rows: list[dict[str, object]] = []
    for image, by_method in maps.items():
        lab = None if labels is None else labels.get(image)
        area = np.bincount((_template_labels() if lab is None else lab).ravel(),
                           minlength=len(REGIONS) + 1)[1:].astype(np.float64)
        for method, sal in by_method.items():
            mass = region_mass(sal, lab)
            share, rank = shares_percent(mass), ranks(mass)
            density = shares_percent(mass / np.maximum(area, 1.0))
            for i, region in enumerate(REGIONS):
                rows.append({"method": method, "image": image, "region": region,
                             "share": float(share[i]), "rank": int(rank[i]), "density": float(density[i])})
    return rows


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (tie-corrected); None when either ranking is constant."""
    a, b = np.asarray(x, np.float64), np.asarray(y, np.float64)
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n_a, n_b = np.count_nonzero(da), np.count_nonzero(db)
    if n_a == 0 or n_b == 0:
        return None
    return float(np.sum(da * db) / np.sqrt(n_a * n_b))


def agreement(rows: Sequence[Mapping[str, object]]) -> dict[str, dict[str, object]]:
    """Per image: the top region most methods put first (with its vote count) and mean pairwise Kendall tau.

    Only the four base methods vote and are compared (Avg is their mean, so it would inflate agreement);
    if none of them is present every method present takes part.
    """
    out: dict[str, dict[str, object]] = {}
    images = list(dict.fromkeys(str(r["image"]) for r in rows))
    for image in images:
        shares: dict[str, np.ndarray] = {}
        firsts: dict[str, int] = {}
        for r in rows:
            if r["image"] != image:
                continue
            region = REGIONS.index(str(r["region"]))
            shares.setdefault(str(r["method"]), np.zeros(len(REGIONS)))[region] = float(r["share"])  # type: ignore[arg-type]
            if r["rank"] == 1:
                firsts[str(r["method"])] = region
        methods = [m for m in AGREEMENT_METHODS if m in shares] or list(shares)
        votes = np.zeros(len(REGIONS), np.int64)
        for m in methods:
            votes[firsts[m]] += 1
        mean_share = np.mean([shares[m] for m in methods], axis=0)
        top = int(np.lexsort((np.arange(len(REGIONS)), -mean_share, -votes))[0])
        taus = [kendall_tau_b(shares[p], shares[q]) for p, q in combinations(methods, 2)]
        valid = [t for t in taus if t is not None]
        out[image] = {
            "top_region": REGIONS[top],
            "top_region_votes": int(votes[top]),
            "voters": len(methods),
            "kendall_tau": round(float(np.mean(valid)), 3) if valid else None,
        }
    return out
