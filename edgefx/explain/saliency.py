"""Black-box occlusion saliency for a face pair (S-, G-, S+, G+, Avg after Mery & Morris 2022), vectorised.

Each face is explained against the other face's embedding: a window of a smooth grid of Gaussian
windows is removed (blended to a neutral fill) or revealed (on a neutral canvas) and the change of
the cosine score is credited to the window.

* S-  single removal:     drop of the score when one window is removed.
* G-  greedy removal:     remove the most damaging window, repeat until the score falls under the
                          threshold (or K steps); each window is credited with the drop of its step.
* S+  single aggregation: gain over the neutral canvas when one window is revealed.
* G+  greedy aggregation: reveal the most helpful window, repeat until the score is back to the
                          original (or K steps); each window is credited with the gain of its step.
* Avg the mean of the four min-max normalised maps.

Speed comes from (1) embedding every variant the single maps need (both faces, removal and reveal,
and the pair's own crops when their embeddings are not given) as one batch, (2) running the four
greedy traces (G- and G+ of both faces) together, each round embedding every trace's next chunk
of candidates as one batch, (3) greedy steps only scoring windows still available, (4) the first
greedy step reusing the single-window scores (they are the same forward passes), and (5) lazy
greedy: a step re-scores candidates in chunks (8, then 4), most promising first by an optimistic
bound (last known gain + 0.02 for the windows overlapping the one just taken, + 0.005 for the
others), and takes the best fresh gain once it beats the bound of every window not re-scored,
widened by the largest gain growth seen in the step. Lazy greedy is exact only under diminishing
returns, which a network does not promise; the margins were chosen by replaying the full greedy
tables of 24 LFW DevTrain pairs (96 traces, K=8, SFace fp32): this rule keeps the full greedy order
in 87/96 traces with 187 re-scoring passes per pair instead of full greedy's 348 (no margins: 43/96
at 93 passes; margins 0.03/0.02: 96/96 at 266). Where it differs, the two candidates' true gains
were within 0.017 of each other (median 0.007). `greedy="full"` gives the exact order at full cost;
`edgefx bench explain` reports the agreement on DevTest.

Defaults, measured on LFW DevTrain (12 pairs, 6 matched, SFace fp32, all 25 windows; pixel-order deletion/insertion
AUC of the S- and S+ maps evaluated with both fills, lower deletion / higher insertion is better;
random order: deletion 0.37, insertion 0.37 on matched pairs):
  grid 5, sigma 0.5 cell, blur  S- deletion 0.224 insertion 0.510   S+ 0.221 / 0.497
  grid 5, sigma 0.5 cell, mean  S- 0.244 / 0.508                    S+ 0.246 / 0.487
  grid 5, sigma 0.7 cell, blur  S- 0.235 / 0.509                    S+ 0.228 / 0.498
  grid 7, sigma 0.5 cell, blur  S- 0.206 / 0.515                    S+ 0.212 / 0.499
  grid 4, sigma 0.5 cell, blur  S- 0.244 / 0.499                    S+ 0.234 / 0.502   (12 windows: corners out)
A 7x7 grid is a little more faithful but costs twice the passes (98 per single map for both faces):
the 400 ms budget for S- and S+ allows about 100 passes at the ~4 ms per batched image the budget
assumed, so grid 5. A 4x4 grid (12 windows) is less faithful on deletion and saves less than it seems:
52 single passes instead of 88, but its greedy steps have so few candidates that lazy greedy re-scores
nearly all of them (198 passes for all five maps on 10 DevTest pairs vs 264 for grid 5); on our 2-core
machine SFace fp32 costs ~11 ms per image at any batch size, so neither grid meets the time budgets there.
sigma 0.35 cell leaves gaps (window coverage dips to 0.5 between centres); 0.7 blurs neighbouring windows together.
With the int8 SFace the score moves by up to 0.008 when the pixels change by 3e-5 (quantisation
steps), i.e. up to a fifth of the largest window gain: int8 maps carry that noise, and lazy greedy keeps
the full greedy order less often (27/40 DevTest traces vs 36/40 on fp32).
Blur removes identity detail but keeps the face's colour and layout, so masked images stay face-like;
a flat mean colour leaves sharp-edged grey patches and was less faithful. K = 8 greedy steps: within 8
removal steps 67% of matched faces fall under the threshold, and within 8 reveal steps 71% of faces are
back to their original score (K=12: 83% / 75% at 1.5x the greedy passes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from edgefx.explain.greedy import GreedyRun, GreedyTrace, OccludedFace, neighbour_mask, run_greedy
from edgefx.explain.windows import (CROP_SIZE, DEFAULT_GRID, composite, default_sigma, gaussian_windows, neutral_fill,
                                    normalize, window_centers, windows_to_map)
from edgefx.runtime.errors import InvalidRequest

METHODS = ("single_removal", "greedy_removal", "single_aggregation", "greedy_aggregation", "average")
LABELS = {
    "single_removal": "S-",
    "greedy_removal": "G-",
    "single_aggregation": "S+",
    "greedy_aggregation": "G+",
    "average": "Avg",
}
BASE_METHODS = METHODS[:4]
IMAGES = ("a", "b")
DEFAULT_FILL = "blur"
DEFAULT_STEPS = 8
DEFAULT_BLOCK = 4
DEFAULT_FIRST_BLOCK = 8

Embed = Callable[[np.ndarray], np.ndarray]
Fill = Literal["blur", "mean"]


@dataclass
class PairExplanation:
    """Maps (112x112 float32 in [0, 1]) per image and method, plus passes and timings per method."""

    score: float
    threshold: float
    maps: dict[str, dict[str, np.ndarray]]  # image -> method -> map
    passes: dict[str, int]  # method -> forward passes (both faces)
    timings_ms: dict[str, float]  # method -> wall time (both faces)
    traces: dict[str, dict[str, GreedyTrace]]  # image -> greedy method -> trace
    window_gains: dict[str, dict[str, np.ndarray]]  # image -> single method -> per-window gain
    grid: int
    sigma: float
    fill: str
    methods: tuple[str, ...]
    windows: int = 0
    region_drops: dict[str, np.ndarray] = field(default_factory=dict)  # image -> score drop per region removed

    def summary(self) -> dict[str, object]:
        return {
            "methods": list(self.methods),
            "labels": {m: LABELS[m] for m in self.methods},
            "grid": self.grid,
            "windows": self.windows,
            "sigma": round(self.sigma, 2),
            "fill": self.fill,
            "passes": dict(self.passes),
            "timings_ms": {m: round(t, 1) for m, t in self.timings_ms.items()},
        }


def _check_crop(crop: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(crop)
    if arr.shape != (CROP_SIZE, CROP_SIZE, 3):
        raise InvalidRequest(f"crop {name} must be {CROP_SIZE}x{CROP_SIZE}x3 RGB, got shape {arr.shape}")
    return arr.astype(np.float32)


def _check_methods(methods: Sequence[str]) -> tuple[str, ...]:
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise InvalidRequest(f"unknown or empty methods {unknown or list(methods)}; choose from {list(METHODS)}")
    return tuple(m for m in METHODS if m in methods)


def _check_regions(regions: Sequence[np.ndarray]) -> list[np.ndarray]:
    stacks = [np.asarray(r, np.float32) for r in regions]
    if len(stacks) != 2 or any(r.ndim != 3 or r.shape[1:] != (CROP_SIZE, CROP_SIZE) for r in stacks) \
            or stacks[0].shape != stacks[1].shape:
        raise InvalidRequest(f"regions must be two (R, {CROP_SIZE}, {CROP_SIZE}) mask stacks of the same R")
    return stacks


@dataclass
class SinglePasses:
    """What the one shared batch of single-window passes gave: the pair's score and each face's per-window scores."""

    score: float
    faces: list[OccludedFace]
    gains: dict[str, dict[str, np.ndarray]]
    removal: list[np.ndarray]
    reveal: list[np.ndarray]
    canvas_scores: list[float]
    passes: dict[str, int]


def _validate(methods: Sequence[str], greedy: str, greedy_steps: int, block: int, first_block: int) -> tuple[str, ...]:
    methods = _check_methods(methods)
    if greedy not in ("lazy", "full"):
        raise InvalidRequest(f"greedy must be 'lazy' or 'full', got {greedy!r}")
    if not 0 <= greedy_steps <= 256:
        raise InvalidRequest(f"greedy_steps must be between 0 and 256, got {greedy_steps}")
    if block < 1 or first_block < 1:
        raise InvalidRequest(f"block and first_block must be >= 1, got {block}, {first_block}")
    return methods


def _single_passes(crops: list[np.ndarray], fills: list[np.ndarray], windows: np.ndarray, embed: Embed,
                   embeddings: tuple[np.ndarray, np.ndarray] | None, need_removal: bool,
                   need_reveal: bool, regions: Sequence[np.ndarray] | None = None) -> SinglePasses:
    """One batch for everything the single maps need (both faces, removal and reveal variants, and the pair's own
    crops if their embeddings are not given): larger batches run faster per image.

    `regions` (one (R, 112, 112) mask stack per face) are removed like extra windows in the same batch: their score
    drops are the direct region occlusion (`region_removal`), with the maps' own fill."""
    n_win = len(windows)
    masks = [windows, windows] if regions is None else [np.concatenate([windows, r]) for r in regions]
    n_rem = len(masks[0])
    parts: list[np.ndarray] = []
    if embeddings is None:
        parts.append(np.stack(crops))
    if need_removal or regions is not None:
        parts += [composite(c, f, 1.0 - m) for c, f, m in zip(crops, fills, masks)]
    if need_reveal:
        parts += [np.concatenate([f[None], composite(f, c, 1.0 - windows)]) for c, f in zip(crops, fills)]
    out = np.asarray(embed(np.concatenate(parts)), dtype=np.float32)
    if embeddings is None:
        emb, out = out[:2], out[2:]
        base_passes = 2
    else:
        emb = np.stack([np.asarray(e, np.float32).ravel() for e in embeddings])
        base_passes = 0
    score = float(emb[0] @ emb[1])
    faces = [OccludedFace(crops[0], fills[0], emb[1]), OccludedFace(crops[1], fills[1], emb[0])]
    gains: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}}
    removal: list[np.ndarray] = []
    reveal: list[np.ndarray] = []
    canvas_scores = [0.0, 0.0]
    passes: dict[str, int] = {}
    if need_removal or regions is not None:
        removed = [out[:n_rem] @ emb[1], out[n_rem : 2 * n_rem] @ emb[0]]
        out = out[2 * n_rem :]
        removal = [r[:n_win] for r in removed]
        for i, img in enumerate(IMAGES):
            if need_removal:
                gains[img]["single_removal"] = score - removal[i]
            if regions is not None:
                gains[img]["region_removal"] = score - removed[i][n_win:]
        if need_removal:
            passes["single_removal"] = 2 * n_win + base_passes
        if regions is not None:
            passes["region_removal"] = 2 * (n_rem - n_win) + (0 if need_removal else base_passes)
    if need_reveal:
        s = [out[: n_win + 1] @ emb[1], out[n_win + 1 :] @ emb[0]]
        canvas_scores = [float(s[0][0]), float(s[1][0])]
        reveal = [s[0][1:], s[1][1:]]
        for i, img in enumerate(IMAGES):
            gains[img]["single_aggregation"] = reveal[i] - canvas_scores[i]
        passes["single_aggregation"] = 2 * (n_win + 1) + (0 if need_removal or regions is not None else base_passes)
    return SinglePasses(score, faces, gains, removal, reveal, canvas_scores, passes)


def _greedy_traces(single: SinglePasses, methods: tuple[str, ...], threshold: float, embed: Embed,
                   windows: np.ndarray, neighbours: np.ndarray, greedy_steps: int, greedy: Literal["lazy", "full"],
                   first_block: int, block: int, passes: dict[str, int],
                   timings: dict[str, float]) -> dict[str, dict[str, GreedyTrace]]:
    """G- and G+ of both faces, run together; fills in their passes and timings."""
    score, faces = single.score, single.faces
    traces: dict[str, dict[str, GreedyTrace]] = {"a": {}, "b": {}}
    runs: list[GreedyRun] = []
    if "greedy_removal" in methods or "average" in methods:
        drop_stops = score >= threshold  # for a non-match the threshold is already crossed: run K steps
        for i, face in enumerate(faces):
            runs.append(GreedyRun(face, "greedy_removal", False, score, single.removal[i],
                                  lambda s: drop_stops and s < threshold, greedy_steps, windows, neighbours,
                                  greedy, first_block, block))
    if "greedy_aggregation" in methods or "average" in methods:
        for i, face in enumerate(faces):
            runs.append(GreedyRun(face, "greedy_aggregation", True, single.canvas_scores[i], single.reveal[i],
                                  lambda s: s >= score, greedy_steps, windows, neighbours, greedy, first_block, block))
    if not runs:
        return traces
    t = time.perf_counter()
    run_greedy(runs, embed)
    greedy_ms = (time.perf_counter() - t) * 1000
    greedy_passes = {m: sum(r.passes for r in runs if r.method == m) for m in dict.fromkeys(r.method for r in runs)}
    total = max(sum(greedy_passes.values()), 1)
    for m, n in greedy_passes.items():  # shared rounds: their time is split by forward passes
        passes[m] = n
        timings[m] = greedy_ms * n / total
    for r in runs:
        traces[IMAGES[0 if r.face is faces[0] else 1]][r.method] = r.trace
    return traces


def _paint_maps(methods: tuple[str, ...], gains: dict[str, dict[str, np.ndarray]],
                traces: dict[str, dict[str, GreedyTrace]], windows: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Window credits painted back onto the crop, min-max normalised; Avg is the mean of the four."""
    maps: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}}
    for img in IMAGES:
        for m in ("single_removal", "single_aggregation"):
            if m in gains[img]:
                maps[img][m] = normalize(windows_to_map(gains[img][m], windows))
        for m, trace in traces[img].items():
            credit = np.zeros(len(windows), np.float32)
            credit[trace.order] = trace.credits
            maps[img][m] = normalize(windows_to_map(credit, windows))
        if "average" in methods:
            maps[img]["average"] = normalize(np.mean([maps[img][m] for m in BASE_METHODS], axis=0))
        maps[img] = {m: maps[img][m] for m in methods}
    return maps


def explain_pair(
    crop_a: np.ndarray,
    crop_b: np.ndarray,
    embed: Embed,
    threshold: float,
    methods: Sequence[str] = METHODS,
    grid: int = DEFAULT_GRID,
    sigma: float | None = None,
    fill: Fill = DEFAULT_FILL,
    greedy_steps: int = DEFAULT_STEPS,
    greedy: Literal["lazy", "full"] = "lazy",
    block: int = DEFAULT_BLOCK,
    first_block: int = DEFAULT_FIRST_BLOCK,
    corners: bool = False,
    embeddings: tuple[np.ndarray, np.ndarray] | None = None,
    regions: Sequence[np.ndarray] | None = None,
) -> PairExplanation:
    """Explain crop A against B's embedding and B against A's with the requested methods.

    `embed` maps an (N, 112, 112, 3) RGB float batch to (N, D) unit-norm embeddings. Pass the pair's
    `embeddings` if they are already known (saves two forward passes). With `regions` (per face an (R, 112, 112)
    stack of region masks) each region is also removed on its own, in the single maps' batch: `region_drops`.
    """
    methods = _validate(methods, greedy, greedy_steps, block, first_block)
    sigma = float(default_sigma(grid) if sigma is None else sigma)
    crops = [_check_crop(crop_a, "a"), _check_crop(crop_b, "b")]
    windows = gaussian_windows(grid, sigma, corners)
    regions = None if regions is None else _check_regions(regions)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    single = _single_passes(crops, [neutral_fill(c, fill) for c in crops], windows, embed, embeddings,
                            need_removal=any(m in methods for m in ("single_removal", "greedy_removal", "average")),
                            need_reveal=any(m in methods for m in ("single_aggregation", "greedy_aggregation",
                                                                   "average")),
                            regions=regions)
    singles_ms = (time.perf_counter() - t0) * 1000
    passes = dict(single.passes)
    for m, n in passes.items():  # one shared batch: its time is split by forward passes
        timings[m] = singles_ms * n / sum(passes.values())

    traces = _greedy_traces(single, methods, threshold, embed, windows, neighbour_mask(window_centers(grid, corners), grid),
                            greedy_steps, greedy, first_block, block, passes, timings)
    t = time.perf_counter()
    maps = _paint_maps(methods, single.gains, traces, windows)
    if "average" in methods:
        passes["average"] = 0
        timings["average"] = (time.perf_counter() - t) * 1000
    return PairExplanation(
        score=single.score,
        threshold=float(threshold),
        maps=maps,
        passes=passes,  # every method computed, also the ones `average` or a greedy method needed
        timings_ms=timings,
        traces={img: {m: tr for m, tr in traces[img].items() if m in methods} for img in IMAGES},
        window_gains={img: {m: g for m, g in single.gains[img].items() if m in methods} for img in IMAGES},
        grid=grid,
        sigma=sigma,
        fill=fill,
        methods=methods,
        windows=len(windows),
        region_drops={img: single.gains[img]["region_removal"] for img in IMAGES if regions is not None},
    )
