"""Facial regions of the aligned 112x112 crop, and the explainability table (region shares, ranks, agreement).

The ten regions are drawn in the ArcFace template from its five landmarks (eye distance d = 35.2 px)
and, for a face whose own aligned landmarks are given, moved onto them by the similarity transform
template -> landmarks, then each onto its own landmarks (eyes, eyebrows and mouth rigidly with theirs, the nose
sheared toward its tip, the rest by inverse-distance weights): a turned head keeps its regions on its features.
Left/right are the subject's own: the image-left eye is the subject's right eye.
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
REGION_METHOD = "region_removal"  # the regions themselves removed one at a time (direct region occlusion)
MAP_RANKINGS = ("share", "density")
# How a map ranks the regions: `share` (saliency mass) or `density` (mass per pixel). Measured with `edgefx eval
# saliency --n 100` (README "Region-level faithfulness"): removing the mass-share top-1 region lowers the score more
# than the density top-1 on matched pairs (Avg 0.068 vs 0.054) and with the other fill; the direct ranking (the
# `region_removal` rows) beats both, so it is what the table, the kiosk and the answers lead with.
RANK_BY = "share"


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


# Regions that ride on one landmark (moved rigidly with it): the eyes and eyebrows with their eye, the mouth with the
# mouth corners' midpoint. The nose is sheared: its top follows the eyes' midpoint, from the nose tip's height down it
# follows the tip (a turned head swings the tip sideways, not the bridge). The others (cheeks, chin, forehead) lie
# between landmarks and follow them point by point (inverse-distance weights).
_ANCHORS = {"right_eye": (0,), "right_eyebrow": (0,), "left_eye": (1,), "left_eyebrow": (1,), "mouth": (3, 4)}
_ELLIPSE_POINTS = 48


def _outline(kind: str, geom: object) -> np.ndarray:
    """A shape's outline in template pixels, (N, 2) float64 (ellipses as polygons)."""
    if kind == "polygon":
        return np.asarray(geom, np.float64)
    (cx, cy), (ax, ay) = geom  # type: ignore[misc]
    t = np.linspace(0.0, 2.0 * np.pi, _ELLIPSE_POINTS, endpoint=False)
    return np.stack([cx + ax * np.cos(t), cy + ay * np.sin(t)], axis=1)


def _paint(outlines: Sequence[tuple[str, np.ndarray]]) -> np.ndarray:
    """Fills the outlines in order (later ones win overlaps), 0 = no region."""
    labels = np.zeros((CROP_SIZE, CROP_SIZE), np.uint8)
    shift = 4  # sub-pixel precision for cv2 drawing
    for name, pts in outlines:
        fixed = np.round(pts * (1 << shift)).astype(np.int32)
        cv2.fillPoly(labels, [fixed], REGIONS.index(name) + 1, lineType=cv2.LINE_8, shift=shift)
    return labels


@lru_cache(maxsize=1)
def _template_labels() -> np.ndarray:
    labels = _paint([(name, _outline(kind, geom)) for name, kind, geom in _SHAPES])
    labels.setflags(write=False)
    return labels


def _half_widths(pts: np.ndarray, matrix: np.ndarray) -> tuple[float, float]:
    """How much each half of the face (image-left, image-right) is foreshortened, <= 1: the square root of its eye's
    distance from the nose tip over the template's, in template pixels. A turned head brings the far eye close to
    the nose tip, but that distance shrinks faster than the eye itself (the tip also swings): hence the square root;
    the near half is not widened (the near eye does not grow). Checked on the LFW contact sheet (`edgefx eval regions`)."""
    back = (pts.astype(np.float64) - matrix[:, 2]) @ np.linalg.inv(matrix[:, :2]).T
    t = TEMPLATE.astype(np.float64)
    left = (back[2, 0] - back[0, 0]) / (t[2, 0] - t[0, 0])
    right = (back[1, 0] - back[2, 0]) / (t[1, 0] - t[2, 0])
    return float(np.sqrt(np.clip(left, 0.16, 1.0))), float(np.sqrt(np.clip(right, 0.16, 1.0)))


def _foreshorten(points: np.ndarray, name: str, halves: tuple[float, float]) -> np.ndarray:
    """Template points with each half of the face scaled horizontally by its width ratio: an eye or eyebrow about
    its own eye, the cheeks, forehead and chin about the nose tip. The nose and the mouth keep their shape (their
    own landmarks place them)."""
    if name in ("nose", "mouth"):
        return points
    t = TEMPLATE.astype(np.float64)
    out = points.copy()
    if name in _ANCHORS:
        centre = float(t[_ANCHORS[name][0], 0])
        scale = np.full(len(points), halves[0] if centre < t[2, 0] else halves[1])
    else:
        centre = float(t[2, 0])
        scale = np.where(points[:, 0] < centre, halves[0], halves[1])
    out[:, 0] = centre + (points[:, 0] - centre) * scale
    return out


def _follow_landmarks(points: np.ndarray, name: str, matrix: np.ndarray, residual: np.ndarray) -> np.ndarray:
    """Template outline points placed on a face: the similarity transform, then the landmarks' own offsets from it."""
    moved = points @ matrix[:, :2].T + matrix[:, 2]
    if name in _ANCHORS:
        return moved + residual[list(_ANCHORS[name])].mean(axis=0)
    if name == "nose":
        eyes_y, tip_y = float(TEMPLATE[:2, 1].mean()), float(TEMPLATE[2, 1])
        down = np.clip((points[:, 1:2] - eyes_y) / (tip_y - eyes_y), 0.0, 1.0)
        return moved + (1.0 - down) * residual[:2].mean(axis=0) + down * residual[2]
    d2 = ((points[:, None, :] - TEMPLATE[None].astype(np.float64)) ** 2).sum(axis=2)
    weights = 1.0 / (d2 + 1.0)
    return moved + (weights / weights.sum(axis=1, keepdims=True)) @ residual


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
    residual = pts.astype(np.float64) - (TEMPLATE.astype(np.float64) @ matrix[:, :2].T + matrix[:, 2])
    halves = _half_widths(pts, matrix)
    return _paint([(name, _follow_landmarks(_foreshorten(_outline(kind, geom), name, halves), name, matrix, residual))
                   for name, kind, geom in _SHAPES])


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


def region_areas(labels: np.ndarray | None = None) -> np.ndarray:
    """Pixels in each region (10,)."""
    labels = _template_labels() if labels is None else labels
    return np.bincount(labels.ravel(), minlength=len(REGIONS) + 1)[1:].astype(np.float64)


def region_importance(saliency: np.ndarray, labels: np.ndarray | None, ranking: str) -> np.ndarray:
    """A map's importance per region (10,) under a ranking: `share` = saliency mass, `density` = mass per pixel."""
    mass = region_mass(saliency, labels)
    if ranking == "share":
        return mass
    if ranking == "density":
        return mass / np.maximum(region_areas(labels), 1.0)
    raise InvalidRequest(f"ranking must be one of {list(MAP_RANKINGS)}, got {ranking!r}")


def explainability_table(
    maps: Mapping[str, Mapping[str, np.ndarray]],
    labels: Mapping[str, np.ndarray] | None = None,
    region_drops: Mapping[str, np.ndarray] | None = None,
    rank_by: str = RANK_BY,
) -> list[dict[str, object]]:
    """Rows {method, image, region, share, density, rank} for every image x method x region.

    `share`: % of the map's mass inside the ten regions; it grows with a region's area (the forehead is
    8x an eye). `density`: the same per pixel of region, also summing to 100. `rank` (1 = most important)
    follows `rank_by`, the ranking that measured most faithful (see RANK_BY).

    `maps` is image -> method -> 112x112 map; `labels` optionally gives per-image region labels
    (from `region_labels(aligned_landmarks)`), else the template regions are used. `region_drops`
    (image -> score drop when each region itself is removed) adds rows of method `region_removal`
    with the drop, its share of the positive drops and their density; ranked by the drop.
    """
    if rank_by not in MAP_RANKINGS:
        raise InvalidRequest(f"rank_by must be one of {list(MAP_RANKINGS)}, got {rank_by!r}")
    rows: list[dict[str, object]] = []
    for image, by_method in maps.items():
        lab = None if labels is None else labels.get(image)
        area = region_areas(lab)
        for method, sal in by_method.items():
            mass = region_mass(sal, lab)
            density = mass / np.maximum(area, 1.0)
            rank = ranks(density if rank_by == "density" else mass)
            share, dens = shares_percent(mass), shares_percent(density)
            for i, region in enumerate(REGIONS):
                rows.append({"method": method, "image": image, "region": region,
                             "share": float(share[i]), "density": float(dens[i]), "rank": int(rank[i])})
        if region_drops is not None and image in region_drops:
            drop = np.asarray(region_drops[image], np.float64)
            positive = np.clip(drop, 0.0, None)
            share, dens, rank = shares_percent(positive), shares_percent(positive / np.maximum(area, 1.0)), ranks(drop)
            for i, region in enumerate(REGIONS):
                rows.append({"method": REGION_METHOD, "image": image, "region": region, "share": float(share[i]),
                             "density": float(dens[i]), "rank": int(rank[i]), "drop": round(float(drop[i]), 4)})
    return rows


def region_check(rows: Sequence[Mapping[str, object]], region_drops: Mapping[str, np.ndarray]
                 ) -> dict[str, dict[str, dict[str, object]]]:
    """Per image and map method: the score drop when its rank-1 region is removed against a random region's.

    A random region's expected drop is the mean drop over the ten regions; a map whose top region drops the
    score no more than that is `weak` for this pair (its ranking is no better than chance here).
    """
    out: dict[str, dict[str, dict[str, object]]] = {}
    for r in rows:
        image, method = str(r["image"]), str(r["method"])
        if r["rank"] != 1 or method == REGION_METHOD or image not in region_drops:
            continue
        drops = np.asarray(region_drops[image], np.float64)
        top = float(drops[REGIONS.index(str(r["region"]))])
        chance = float(drops.mean())
        out.setdefault(image, {})[method] = {"top_region": r["region"], "top_drop": round(top, 4),
                                             "random_drop": round(chance, 4), "weak": bool(top <= chance)}
    return out


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (tie-corrected); None when either ranking is constant."""
    a, b = np.asarray(x, np.float64), np.asarray(y, np.float64)
    i, j = np.triu_indices(len(a), k=1)
    da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
    n_a, n_b = np.count_nonzero(da), np.count_nonzero(db)
    if n_a == 0 or n_b == 0:
        return None
    return float(np.sum(da * db) / np.sqrt(n_a * n_b))


def agreement(rows: Sequence[Mapping[str, object]], figure: str = RANK_BY) -> dict[str, dict[str, object]]:
    """Per image: the top region most methods put first (with its vote count) and mean pairwise Kendall tau.

    Only the four base methods vote and are compared (Avg is their mean, so it would inflate agreement);
    if none of them is present every map method present takes part. Rankings are compared on `figure`
    (`share` or `density`: the one the table was ranked by).
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
            if r["method"] == REGION_METHOD:
                continue
            shares.setdefault(str(r["method"]), np.zeros(len(REGIONS)))[region] = float(r[figure])  # type: ignore[arg-type]
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
