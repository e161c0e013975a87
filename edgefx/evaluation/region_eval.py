"""Region-level faithfulness: remove the region each ranking puts first (and its top 3), measure the score change, compare with random regions."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgefx.explain.regions import MAP_RANKINGS, REGION_METHOD, REGIONS, region_importance, region_masks
from edgefx.explain.windows import composite, neutral_fill
from edgefx.runtime.errors import EdgefxError

Embed = Callable[[np.ndarray], np.ndarray]
REVEAL_METHOD = "region_aggregation"  # the regions themselves revealed one at a time on the neutral canvas (S+)
RANDOM = "random"
TOP = (1, 3)
# what is measured: removal with the maps' own fill (what the table claims), removal with the other fill (a
# check the direct ranking was not fitted to), and reveal on the maps' neutral canvas (the gain a region alone gives)
MODES = ("removal", "removal_other_fill", "reveal")


def other_fill(fill: str) -> str:
    return "mean" if fill == "blur" else "blur"


def region_rankings(maps: Mapping[str, np.ndarray], labels: np.ndarray, drops: np.ndarray,
                    gains: np.ndarray) -> dict[str, np.ndarray]:
    """Region orders, most important first: `<share|density>:<method>` from each map, and the direct occlusion
    rankings `region_removal` (S- on the regions: score drop) and `region_aggregation` (S+ on the regions: gain)."""
    out: dict[str, np.ndarray] = {}
    for ranking in MAP_RANKINGS:
        for method, sal in maps.items():
            score = region_importance(sal, labels, ranking)
            out[f"{ranking}:{method}"] = np.lexsort((np.arange(len(REGIONS)), -score))
    out[REGION_METHOD] = np.lexsort((np.arange(len(REGIONS)), -np.asarray(drops, np.float64)))
    out[REVEAL_METHOD] = np.lexsort((np.arange(len(REGIONS)), -np.asarray(gains, np.float64)))
    return out


def _region_sets(orders: Mapping[str, np.ndarray], rng: np.random.Generator, draws: int
                 ) -> tuple[dict[str, dict[int, tuple[int, ...]]], list[tuple[int, ...]]]:
    """Per ranking (and per random draw) the region set occluded at each top-k; and every distinct set of > 1 region."""
    sets: dict[str, dict[int, tuple[int, ...]]] = {
        name: {k: tuple(sorted(int(i) for i in order[:k])) for k in TOP} for name, order in orders.items()}
    for d in range(draws):
        sets[f"{RANDOM}{d}"] = {k: tuple(sorted(int(i) for i in rng.choice(len(REGIONS), k, replace=False)))
                                for k in TOP}
    multi = sorted({s for by_k in sets.values() for s in by_k.values() if len(s) > 1})
    return sets, multi


def _scores(crop: np.ndarray, target: np.ndarray, fill_img: np.ndarray, keep: np.ndarray, reveal: bool,
            embed: Embed) -> np.ndarray:
    """Scores against `target` with each keep mask: the crop blended to its fill, or revealed on the fill."""
    batch = composite(fill_img, crop, keep) if reveal else composite(crop, fill_img, keep)
    return np.asarray(embed(batch), np.float32) @ target


def face_region_test(crop: np.ndarray, target: np.ndarray, maps: Mapping[str, np.ndarray], labels: np.ndarray,
                     fill: str, embed: Embed, rng: np.random.Generator, draws: int) -> dict[str, Any]:
    """One face: per mode and ranking the score change when its top-1 / top-3 regions are occluded; random
    regions are `draws` seeded draws (their mean is the face's random baseline)."""
    crop = np.asarray(crop, np.float32)
    masks = region_masks(labels).astype(np.float32)
    fills = {"removal": neutral_fill(crop, fill), "removal_other_fill": neutral_fill(crop, other_fill(fill))}
    fills["reveal"] = fills["removal"]
    keep_single = 1.0 - masks
    base, canvas = (float(v) for v in np.asarray(embed(np.stack([crop, fills["reveal"]])), np.float32) @ target)
    change: dict[str, dict[tuple[int, ...], float]] = {}
    singles: dict[str, np.ndarray] = {}
    for mode in MODES:
        reveal = mode == "reveal"
        s = _scores(crop, target, fills[mode], keep_single, reveal, embed)
        singles[mode] = s - canvas if reveal else base - s
    orders = region_rankings(maps, labels, singles["removal"], singles["reveal"])
    sets, multi = _region_sets(orders, rng, draws)
    keep_multi = np.stack([1.0 - masks[list(s)].max(axis=0) for s in multi]) if multi else np.zeros((0, 112, 112))
    for mode in MODES:
        reveal = mode == "reveal"
        s = _scores(crop, target, fills[mode], keep_multi, reveal, embed) if multi else np.zeros(0)
        multi_change = (s - canvas) if reveal else (base - s)
        change[mode] = {(int(i),): float(v) for i, v in enumerate(singles[mode])}
        change[mode].update({st: float(v) for st, v in zip(multi, multi_change)})
    out: dict[str, Any] = {"base": base, "canvas": canvas,
                           "top_regions": {name: REGIONS[int(o[0])] for name, o in orders.items()}}
    for mode in MODES:
        by_rank = {name: {f"top{k}": change[mode][sets[name][k]] for k in TOP} for name in orders}
        by_rank[RANDOM] = {f"top{k}": float(np.mean([change[mode][sets[f"{RANDOM}{d}"][k]] for d in range(draws)]))
                           for k in TOP}
        by_rank["all_regions_mean"] = {"top1": float(np.mean(singles[mode]))}
        out[mode] = by_rank
    return out


def summarize_regions(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per group (matched, mismatched, all), mode and ranking: mean score change of the top-1 and top-3 regions,
    the share of faces where it beats the random regions, and (top-1) where it beats the mean of all ten regions."""
    out: dict[str, Any] = {}
    for label, keep in (("matched", True), ("mismatched", False), ("all", None)):
        sel = [r["regions"] for r in rows if "regions" in r and (keep is None or r["genuine"] == keep)]
        if not sel:
            continue
        part: dict[str, Any] = {"faces": len(sel)}
        for mode in MODES:
            names = [n for n in sel[0][mode] if n != "all_regions_mean"]
            table: dict[str, Any] = {}
            for name in names:
                entry: dict[str, float] = {}
                for k in TOP:
                    v = np.array([f[mode][name][f"top{k}"] for f in sel])
                    entry[f"top{k}_mean"] = round(float(v.mean()), 4)
                    if name != RANDOM:
                        rnd = np.array([f[mode][RANDOM][f"top{k}"] for f in sel])
                        entry[f"top{k}_beats_random"] = round(float(np.mean(v > rnd)), 3)
                if name != RANDOM:
                    v1 = np.array([f[mode][name]["top1"] for f in sel])
                    mean_all = np.array([f[mode]["all_regions_mean"]["top1"] for f in sel])
                    entry["top1_beats_region_mean"] = round(float(np.mean(v1 > mean_all)), 3)
                table[name] = entry
            part[mode] = table
        out[label] = part
    return out


def sheet_faces(engine: Any, root: Path, pairs_file: Path, n: int, scan: int = 200
                ) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(crop, landmarks in the crop, caption) of n LFW faces for the region contact sheet: of the first `scan` faces
    of the pairs file (both photos of each pair, in order), the n // 2 most turned (|yaw|) and the first frontal ones."""
    from edgefx.evaluation.lfw import lfw_image_root, read_pairs
    from edgefx.faces.align import transform_points
    from edgefx.faces.quality import head_pose

    images = lfw_image_root(root)
    paths = list(dict.fromkeys(p for pair in read_pairs(pairs_file) for p in (pair.path_a, pair.path_b)))[:scan]
    found: list[tuple[float, np.ndarray, np.ndarray, str]] = []
    for path in paths:
        try:
            face = engine.prepare((images / path).read_bytes(), "a", {})
        except EdgefxError:
            continue
        yaw, _ = head_pose(face.face.landmarks)
        found.append((yaw, face.crop, transform_points(face.face.landmarks, face.matrix), Path(path).stem))
    turned = sorted(range(len(found)), key=lambda i: -abs(found[i][0]))[: n // 2]
    rest = [i for i in range(len(found)) if i not in turned][: n - len(turned)]
    return [(found[i][1], found[i][2], f"{found[i][3][:22]} yaw {found[i][0]:+.0f}") for i in sorted(turned + rest)]
