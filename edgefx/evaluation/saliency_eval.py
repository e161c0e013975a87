"""`edgefx eval saliency` (deletion/insertion faithfulness vs random) and `edgefx bench explain` (speed, passes, order agreement)."""

from __future__ import annotations

import importlib.util
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgefx.runtime.errors import EdgefxError
from edgefx.evaluation.region_eval import face_region_test, other_fill, summarize_regions
from edgefx.explain.regions import REGION_METHOD, region_labels, region_masks
from edgefx.explain.saliency import DEFAULT_FILL, DEFAULT_STEPS, METHODS, PairExplanation, explain_pair
from edgefx.explain.windows import DEFAULT_GRID, composite, default_sigma, gaussian_windows, neutral_fill, window_scores

log = logging.getLogger(__name__)
Embed = Callable[[np.ndarray], np.ndarray]
Crops = tuple[np.ndarray, np.ndarray]
Landmarks = tuple[np.ndarray | None, np.ndarray | None]


# -- faithfulness ---------------------------------------------------------------------------------

def curves(crop: np.ndarray, target: np.ndarray, orders: Sequence[np.ndarray], windows: np.ndarray, fill: str,
           embed: Embed) -> tuple[np.ndarray, np.ndarray]:
    """Deletion and insertion score curves, (len(orders), W + 1) each, for windows taken in each order.

    Deletion blends the first t windows of the order to the neutral fill; insertion reveals them on
    the neutral canvas. All orders' steps of one face are embedded as one batch.
    """
    crop = np.asarray(crop, np.float32)
    fill_img = neutral_fill(crop, fill)
    n_win = len(windows)
    keeps = np.empty((len(orders), n_win, *windows.shape[1:]), np.float32)
    for i, order in enumerate(orders):
        keeps[i] = np.cumprod(1.0 - windows[np.asarray(order)], axis=0)
    keeps = keeps.reshape(-1, *windows.shape[1:])
    batch = np.concatenate([crop[None], fill_img[None], composite(crop, fill_img, keeps),
                            composite(fill_img, crop, keeps)])
    s = np.asarray(embed(batch), np.float32) @ target
    original, canvas = s[0], s[1]
    deletion = s[2 : 2 + len(keeps)].reshape(len(orders), n_win)
    insertion = s[2 + len(keeps) :].reshape(len(orders), n_win)
    return (np.concatenate([np.full((len(orders), 1), original), deletion], axis=1),
            np.concatenate([np.full((len(orders), 1), canvas), insertion], axis=1))


def auc(curve: np.ndarray) -> np.ndarray:
    """Area under score curves over the fraction of windows taken (x from 0 to 1)."""
    c = np.atleast_2d(curve)
    return np.trapezoid(c, dx=1.0 / (c.shape[1] - 1), axis=1)


def faithfulness(pairs: Iterable[tuple[Crops, bool]], embed: Embed, threshold: float, grid: int = DEFAULT_GRID,
                 sigma: float | None = None, fill: str = DEFAULT_FILL, greedy_steps: int = DEFAULT_STEPS,
                 random_orders: int = 3, seed: int = 0, landmarks: Sequence[Landmarks] | None = None,
                 region_draws: int = 5, pair_ids: Sequence[int] | None = None,
                 pixel_level: bool = True) -> dict[str, Any]:
    """Deletion/insertion AUC per method and for random window orders, and the region-level test
    (`region_eval`), over matched and mismatched pairs.

    Lower deletion AUC and higher insertion AUC mean the map's order finds the windows the score
    depends on sooner than chance. Per pair and face each method is also compared with the mean of
    the random orders (`beats_random_*` = share of faces where it does better). `landmarks` (per pair, the
    two faces' 5 points in the crop) place the regions; without them the template regions are used. Random draws
    are seeded per pair (`pair_ids`, default 0, 1, ...), so a pair gives the same figures in any shard of a run.
    Without `pixel_level` only the region-level test runs (the curves are 60 % of the forward passes).
    """
    sigma = float(default_sigma(grid) if sigma is None else sigma)
    windows = gaussian_windows(grid, sigma)
    rows: list[dict[str, Any]] = []
    for n, ((crop_a, crop_b), genuine) in enumerate(pairs):
        pair_id = n if pair_ids is None else int(pair_ids[n])
        rng, region_rng = np.random.default_rng([seed, pair_id]), np.random.default_rng([seed, pair_id, 1])
        points = landmarks[n] if landmarks is not None else (None, None)
        labels = [region_labels(p) for p in points]
        ex = explain_pair(crop_a, crop_b, embed, threshold, grid=grid, sigma=sigma, fill=fill,
                          greedy_steps=greedy_steps)
        emb = np.asarray(embed(np.stack([crop_a, crop_b]).astype(np.float32)), np.float32)
        for image, crop, target, lab in (("a", crop_a, emb[1], labels[0]), ("b", crop_b, emb[0], labels[1])):
            row: dict[str, Any] = {"pair": pair_id, "genuine": bool(genuine), "score": ex.score, "image": image}
            if pixel_level:
                orders = [np.argsort(-window_scores(ex.maps[image][m], windows), kind="stable") for m in METHODS]
                orders += [rng.permutation(len(windows)) for _ in range(random_orders)]
                row.update(_pixel_row(*curves(crop, target, orders, windows, fill, embed)))
            row["regions"] = face_region_test(crop, target, ex.maps[image], lab, fill, embed, region_rng, region_draws)
            rows.append(row)
        log.info("pair %d done", n + 1)
    return {"config": {"grid": grid, "sigma": round(sigma, 2), "fill": fill, "greedy_steps": greedy_steps,
                       "random_orders": random_orders, "threshold": threshold, "region_draws": region_draws,
                       "region_other_fill": other_fill(fill)},
            "summary": summarize_faithfulness(rows), "regions": summarize_regions(rows), "faces": rows}


def merge_reports(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Shards of one run (same config, disjoint pairs) as one report: faces in pair order, summaries recomputed."""
    if not reports or any(r["config"] != reports[0]["config"] for r in reports):
        raise EdgefxError("the reports to merge are missing or were made with different settings")
    rows = sorted((f for r in reports for f in r["faces"]), key=lambda f: (f["pair"], f["image"]))
    merged = {k: v for k, v in reports[0].items() if k not in ("faces", "summary", "regions", "pairs")}
    merged["pairs"] = {"matched": sum(f["genuine"] for f in rows) // 2, "mismatched": sum(not f["genuine"] for f in rows) // 2}
    return {**merged, "summary": summarize_faithfulness(rows), "regions": summarize_regions(rows), "faces": rows}


def _pixel_row(deletion: np.ndarray, insertion: np.ndarray) -> dict[str, Any]:
    """One face's AUCs and curves per method (the first len(METHODS) orders) and for the mean of the random ones."""
    d_auc, i_auc = auc(deletion), auc(insertion)
    row: dict[str, Any] = {"deletion": {m: float(d_auc[k]) for k, m in enumerate(METHODS)},
                           "insertion": {m: float(i_auc[k]) for k, m in enumerate(METHODS)},
                           "deletion_curves": {m: deletion[k].round(4).tolist() for k, m in enumerate(METHODS)},
                           "insertion_curves": {m: insertion[k].round(4).tolist() for k, m in enumerate(METHODS)}}
    row["deletion"]["random"] = float(d_auc[len(METHODS):].mean())
    row["insertion"]["random"] = float(i_auc[len(METHODS):].mean())
    row["deletion_curves"]["random"] = deletion[len(METHODS):].mean(axis=0).round(4).tolist()
    row["insertion_curves"]["random"] = insertion[len(METHODS):].mean(axis=0).round(4).tolist()
    return row


def summarize_faithfulness(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rows = [r for r in rows if "deletion" in r]
    for label, keep in (("matched", True), ("mismatched", False), ("all", None)):
        sel = [r for r in rows if keep is None or r["genuine"] == keep]
        if not sel:
            continue
        part: dict[str, Any] = {"faces": len(sel)}
        for m in (*METHODS, "random"):
            d = np.array([r["deletion"][m] for r in sel])
            i = np.array([r["insertion"][m] for r in sel])
            entry = {"deletion_auc": round(float(d.mean()), 4), "insertion_auc": round(float(i.mean()), 4)}
            if m != "random":
                dr = np.array([r["deletion"]["random"] for r in sel])
                ir = np.array([r["insertion"]["random"] for r in sel])
                entry["beats_random_deletion"] = round(float(np.mean(d < dr)), 3)
                entry["beats_random_insertion"] = round(float(np.mean(i > ir)), 3)
                entry["deletion_gain_vs_random"] = round(float((dr - d).mean()), 4)
                entry["insertion_gain_vs_random"] = round(float((i - ir).mean()), 4)
            part[m] = entry
        out[label] = part
    return out


# -- speed ----------------------------------------------------------------------------------------

def _load_reference() -> Any:
    """tests/reference_saliency.py of the source tree: the plain loop lives with the tests, not in the runtime."""
    path = Path(__file__).resolve().parents[2] / "tests" / "reference_saliency.py"
    if not path.is_file():
        raise EdgefxError(f"the reference implementation {path} is missing (run from a source checkout)")
    spec = importlib.util.spec_from_file_location("edgefx_reference_saliency", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def order_agreement(fast: PairExplanation, reference_orders: dict[str, dict[str, list[int]]]) -> dict[str, Any]:
    """Per greedy trace: is the lazy order the full order, and how many leading steps agree."""
    same, prefix, total = 0, [], 0
    for image, by_method in reference_orders.items():
        for m, ref in by_method.items():
            got = fast.traces[image][m].order
            total += 1
            same += int(got == ref)
            k = 0
            while k < min(len(got), len(ref)) and got[k] == ref[k]:
                k += 1
            prefix.append(k / max(len(ref), 1))
    return {"identical": same, "traces": total, "mean_prefix_fraction": float(np.mean(prefix)) if prefix else 1.0}


class _Counted:
    """Wraps an embedder and counts the images it embeds."""

    def __init__(self, embed: Embed) -> None:
        self.embed = embed
        self.images = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.images += len(batch)
        return self.embed(batch)


def bench_explain_pairs(pairs: Sequence[Crops], embed: Embed, threshold: float, reference: bool = True,
                        grid: int = DEFAULT_GRID, greedy_steps: int = DEFAULT_STEPS, fill: str = DEFAULT_FILL
                        ) -> dict[str, Any]:
    """Times the vectorised explanation and, on the same embedder, the plain per-mask loop (batch 1, full greedy).

    The five maps are timed as an explanation computes them: with the ten regions removed in the same batch (template
    regions; a face's own landmarks only move them)."""
    ref_mod = _load_reference() if reference else None
    masks = region_masks().astype(np.float32)
    singles, alls, refs = [], [], []
    ref_passes: list[int] = []
    passes: dict[str, list[int]] = {m: [] for m in (*METHODS, REGION_METHOD)}
    method_ms: dict[str, list[float]] = {m: [] for m in (*METHODS, REGION_METHOD)}
    identical = traces = 0
    prefixes: list[float] = []
    max_diff_agreeing: list[float] = []
    diff_differing: list[float] = []
    load_before = os.getloadavg()
    explain_pair(pairs[0][0], pairs[0][1], embed, threshold, grid=grid, greedy_steps=greedy_steps, fill=fill)  # warm-up
    for crop_a, crop_b in pairs:
        t0 = time.perf_counter()
        explain_pair(crop_a, crop_b, embed, threshold, methods=["single_removal", "single_aggregation"], grid=grid,
                     greedy_steps=greedy_steps, fill=fill)
        t1 = time.perf_counter()
        ex = explain_pair(crop_a, crop_b, embed, threshold, grid=grid, greedy_steps=greedy_steps, fill=fill,
                          regions=[masks, masks])
        t2 = time.perf_counter()
        singles.append((t1 - t0) * 1e3)
        alls.append((t2 - t1) * 1e3)
        for m in passes:
            passes[m].append(ex.passes[m])
            method_ms[m].append(ex.timings_ms[m])
        if ref_mod is not None:
            counted = _Counted(embed)
            t3 = time.perf_counter()
            ref = ref_mod.reference_explain(crop_a, crop_b, counted, threshold, grid=grid, fill=fill,
                                            greedy_steps=greedy_steps)
            refs.append((time.perf_counter() - t3) * 1e3)
            ref_passes.append(counted.images)
            agree = order_agreement(ex, ref["orders"])
            identical += agree["identical"]
            traces += agree["traces"]
            prefixes.append(agree["mean_prefix_fraction"])
            for image in ("a", "b"):
                for m in ("single_removal", "single_aggregation"):
                    max_diff_agreeing.append(float(np.abs(ex.maps[image][m] - ref["maps"][image][m]).max()))
                for m in ("greedy_removal", "greedy_aggregation"):
                    diff = float(np.abs(ex.maps[image][m] - ref["maps"][image][m]).max())
                    if ex.traces[image][m].order == ref["orders"][image][m]:
                        max_diff_agreeing.append(diff)
                    else:
                        diff_differing.append(diff)
    report: dict[str, Any] = {
        "pairs": len(pairs),
        "config": {"grid": grid, "sigma": round(default_sigma(grid), 2), "fill": fill, "greedy_steps": greedy_steps,
                   "greedy": "lazy"},
        "single_maps_both_faces_ms": round(statistics.median(singles), 1),
        "all_five_maps_both_faces_ms": round(statistics.median(alls), 1),
        "per_method_ms": {m: round(statistics.median(v), 1) for m, v in method_ms.items()},
        "passes": {m: round(statistics.median(v), 1) for m, v in passes.items()},
        "passes_total": round(statistics.median([sum(v[i] for v in passes.values()) for i in range(len(pairs))]), 1),
        "targets": {"single_maps_ms": 400, "all_five_ms": 2000, "speedup": 5.0},
        "load_average_1min": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)},
    }
    if refs:
        report["reference_loop_ms"] = round(statistics.median(refs), 1)
        report["reference_passes"] = round(statistics.median(ref_passes), 1)
        report["speedup"] = round(statistics.median(refs) / statistics.median(alls), 2)
        report["order_agreement"] = {"identical_traces": identical, "traces": traces,
                                     "fraction": round(identical / max(traces, 1), 3),
                                     "mean_prefix_fraction": round(float(np.mean(prefixes)), 3)}
        report["max_abs_map_diff_where_order_agrees"] = round(max(max_diff_agreeing), 6)
        # where lazy greedy took another order, how far its map is from full greedy's (normalised maps, 0..1)
        report["greedy_map_diff_where_order_differs"] = (
            {"traces": len(diff_differing), "median_max_abs": round(statistics.median(diff_differing), 3),
             "max_abs": round(max(diff_differing), 3)} if diff_differing else {"traces": 0})
    return report


# -- LFW pairs through the engine -----------------------------------------------------------------

def lfw_crops(engine: Any, root: Path, pairs_file: Path, n: int) -> list[tuple[Crops, bool]]:
    """Aligned crops of n pairs (half matched, half mismatched, spread over the file); failures are skipped."""
    return [(crops, genuine) for crops, genuine, _ in lfw_faces(engine, root, pairs_file, n)]


def lfw_faces(engine: Any, root: Path, pairs_file: Path, n: int) -> list[tuple[Crops, bool, Landmarks]]:
    """`lfw_crops` with each face's 5 landmarks in its crop. Deterministic: every (len(kind) // (n / 2))-th matched and
    mismatched pair of the file, in file order (pairsDevTest.txt, n = 100: every 5th of each kind)."""
    from edgefx.evaluation.lfw import lfw_image_root, read_pairs
    from edgefx.faces.align import transform_points

    pairs = read_pairs(pairs_file)
    images = lfw_image_root(root)
    genuine = [p for p in pairs if p.genuine]
    impostor = [p for p in pairs if not p.genuine]
    want = {True: (n + 1) // 2, False: n // 2}
    out: list[tuple[Crops, bool, Landmarks]] = []
    for group in (genuine, impostor):
        label = group[0].genuine if group else True
        step = max(len(group) // max(want[label], 1), 1)
        taken = 0
        for p in group[::step]:
            if taken >= want[label]:
                break
            try:
                timings: dict[str, float] = {}
                fa = engine.prepare((images / p.path_a).read_bytes(), "a", timings)
                fb = engine.prepare((images / p.path_b).read_bytes(), "b", timings)
            except EdgefxError as exc:
                log.warning("skipping %s / %s: %s", p.path_a, p.path_b, exc.message)
                continue
            points = (transform_points(fa.face.landmarks, fa.matrix), transform_points(fb.face.landmarks, fb.matrix))
            out.append(((fa.crop, fb.crop), p.genuine, points))
            taken += 1
    return out
