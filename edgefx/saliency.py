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
from functools import lru_cache
from typing import Literal

import cv2
import numpy as np

from edgefx.errors import InvalidRequest

CROP_SIZE = 112
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

DEFAULT_GRID = 5
DEFAULT_SIGMA_CELLS = 0.5
DEFAULT_FILL = "blur"
DEFAULT_STEPS = 8
DEFAULT_BLOCK = 4
DEFAULT_FIRST_BLOCK = 8
NEAR_MARGIN = 0.02
FAR_MARGIN = 0.005
BLUR_SIGMA = 8.0
NEIGHBOUR_REACH = 1.5  # cells (Chebyshev distance between window centres): the 8 surrounding windows

Embed = Callable[[np.ndarray], np.ndarray]
Fill = Literal["blur", "mean"]


@dataclass
class GreedyTrace:
    """The windows a greedy method took, in order, with the score after each step."""

    order: list[int] = field(default_factory=list)
    credits: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


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


class _Face:
    """Per-face constants: crop, fill, the target embedding it is scored against."""

    def __init__(self, crop: np.ndarray, fill: np.ndarray, target: np.ndarray) -> None:
        self.crop = crop
        self.fill = fill
        self.target = target


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


def _scores(embed: Embed, batch: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cosine of each image's embedding with its target row (embeddings are unit-norm)."""
    if len(batch) == 0:
        return np.zeros(0, dtype=np.float32)
    emb = np.asarray(embed(batch), dtype=np.float32)
    return np.einsum("nd,nd->n", emb, targets)


def _neighbours(centers: np.ndarray, grid: int) -> np.ndarray:
    """(W, W) bool: windows whose centres are at most one cell apart, diagonals included (not itself)."""
    cell = CROP_SIZE / grid
    d = np.abs(centers[:, None, :] - centers[None, :, :]).max(axis=2)
    return (d <= NEIGHBOUR_REACH * cell) & ~np.eye(len(centers), dtype=bool)


class _GreedyRun:
    """One greedy trace (a face, removal or reveal) in progress, with its lazy-evaluation state.

    A step scores candidate windows in chunks, most promising first by an optimistic bound (last
    known gain + a margin, larger for the windows overlapping the one just taken), and takes the
    best fresh gain once it beats the bound of every window not yet re-scored, widened by the
    largest gain growth seen among the re-scored ones. `full` scores every available window.
    """

    def __init__(self, face: _Face, method: str, reveal: bool, start_score: float, first_scores: np.ndarray,
                 stop: Callable[[float], bool], steps: int, windows: np.ndarray, neighbours: np.ndarray,
                 mode: str, first_block: int, block: int) -> None:
        self.face, self.method, self.reveal, self.stop = face, method, reveal, stop
        self.sign = 1.0 if reveal else -1.0  # gain = sign * (new score - current score)
        self.windows, self.neighbours, self.mode = windows, neighbours, mode
        self.first_block, self.block = first_block, block
        self.current = float(start_score)
        self.steps_left = steps
        self.keep = np.ones((CROP_SIZE, CROP_SIZE), np.float32)
        self.available = np.ones(len(windows), bool)
        first = np.asarray(first_scores, np.float32)
        self.stale = (self.sign * (first - self.current)).astype(np.float64)
        self.trace = GreedyTrace()
        self.passes = 0
        self.active = False
        self.queue: list[int] = []
        self.bounds: dict[int, float] = {}
        self.fresh: dict[int, float] = {}
        self.growth = 0.0
        self.chunk_size = 0
        # step 1 is known from the single-window scores (same forward passes)
        if self._may_step():
            k = int(np.argmax(self.stale))
            self._take(k, float(first[k]))
            self._begin_step()

    def _may_step(self) -> bool:
        return self.steps_left > 0 and bool(self.available.any()) and not self.stop(self.current)

    def _take(self, k: int, new_score: float) -> None:
        self.trace.order.append(k)
        self.trace.credits.append(float(self.sign * (new_score - self.current)))
        self.trace.scores.append(float(new_score))
        self.keep = self.keep * (1.0 - self.windows[k])
        self.available[k] = False
        self.current = float(new_score)
        self.steps_left -= 1

    def _begin_step(self) -> None:
        self.active = self._may_step()
        if not self.active:
            return
        cand = np.flatnonzero(self.available)
        self.fresh, self.growth = {}, 0.0
        if self.mode == "full":
            self.queue, self.bounds, self.chunk_size = [int(k) for k in cand], {}, len(cand)
            return
        near = self.neighbours[self.trace.order[-1], cand]
        bound = self.stale[cand] + np.where(near, NEAR_MARGIN, FAR_MARGIN)
        ranked = np.argsort(-bound, kind="stable")
        self.queue = [int(k) for k in cand[ranked]]
        self.bounds = {int(k): float(b) for k, b in zip(cand, bound)}
        self.chunk_size = self.first_block

    def next_chunk(self) -> tuple[list[int], np.ndarray]:
        """The windows to score next and their masked images."""
        chunk, self.queue = self.queue[: self.chunk_size], self.queue[self.chunk_size :]
        self.chunk_size = self.block
        base, other = (self.face.fill, self.face.crop) if self.reveal else (self.face.crop, self.face.fill)
        return chunk, composite(base, other, self.keep[None] * (1.0 - self.windows[chunk]))

    def feed(self, chunk: list[int], scores: np.ndarray) -> None:
        """Scores of `chunk`; takes a window when the step is decided and starts the next step."""
        self.passes += len(chunk)
        for k, s in zip(chunk, scores):
            gain = self.sign * (float(s) - self.current)
            self.growth = max(self.growth, gain - float(self.stale[k]))
            self.stale[k] = gain
            self.fresh[k] = float(s)
        best = max(self.fresh, key=lambda k: (self.sign * self.fresh[k], -k))
        best_gain = self.sign * (self.fresh[best] - self.current)
        if self.queue and best_gain < max(self.bounds[k] for k in self.queue) + self.growth:
            return
        self._take(best, self.fresh[best])
        self._begin_step()


def _run_greedy(runs: list[_GreedyRun], embed: Embed) -> int:
    """Advances every run together: each round embeds all runs' next chunks as one batch. Returns the rounds."""
    rounds = 0
    while True:
        live = [r for r in runs if r.active]
        if not live:
            return rounds
        requests = [(r, *r.next_chunk()) for r in live]
        targets = np.concatenate([np.broadcast_to(r.face.target, (len(c), r.face.target.shape[0]))
                                  for r, c, _ in requests])
        scores = _scores(embed, np.concatenate([img for _, _, img in requests]), targets)
        rounds += 1
        pos = 0
        for r, chunk, _ in requests:
            r.feed(chunk, scores[pos : pos + len(chunk)])
            pos += len(chunk)


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
) -> PairExplanation:
    """Explain crop A against B's embedding and B against A's with the requested methods.

    `embed` maps an (N, 112, 112, 3) RGB float batch to (N, 128) unit-norm embeddings. Pass the pair's
    `embeddings` if they are already known (saves two forward passes).
    """
    methods = _check_methods(methods)
    if greedy not in ("lazy", "full"):
        raise InvalidRequest(f"greedy must be 'lazy' or 'full', got {greedy!r}")
    if not 0 <= greedy_steps <= 256:
        raise InvalidRequest(f"greedy_steps must be between 0 and 256, got {greedy_steps}")
    if block < 1 or first_block < 1:
        raise InvalidRequest(f"block and first_block must be >= 1, got {block}, {first_block}")
    sigma = float(default_sigma(grid) if sigma is None else sigma)
    crops = [_check_crop(crop_a, "a"), _check_crop(crop_b, "b")]
    windows = gaussian_windows(grid, sigma, corners)
    centers = window_centers(grid, corners)
    n_win = len(windows)
    passes: dict[str, int] = {}
    timings: dict[str, float] = {}

    need_removal = any(m in methods for m in ("single_removal", "greedy_removal", "average"))
    need_reveal = any(m in methods for m in ("single_aggregation", "greedy_aggregation", "average"))
    t0 = time.perf_counter()
    # One batch for everything the single maps need (both faces, removal and reveal variants, and the
    # pair's own crops if their embeddings are not given): larger batches run faster per image.
    fills = [neutral_fill(c, fill) for c in crops]
    keep = 1.0 - windows
    parts: list[np.ndarray] = []
    if embeddings is None:
        parts.append(np.stack(crops))
    if need_removal:
        parts += [composite(c, f, keep) for c, f in zip(crops, fills)]
    if need_reveal:
        parts += [np.concatenate([f[None], composite(f, c, keep)]) for c, f in zip(crops, fills)]
    out = np.asarray(embed(np.concatenate(parts)), dtype=np.float32)
    if embeddings is None:
        emb, out = out[:2], out[2:]
        base_passes = 2
    else:
        emb = np.stack([np.asarray(e, np.float32).ravel() for e in embeddings])
        base_passes = 0
    score = float(emb[0] @ emb[1])
    faces = [_Face(crops[0], fills[0], emb[1]), _Face(crops[1], fills[1], emb[0])]
    gains: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}}
    singles: dict[str, list[np.ndarray]] = {}
    canvas_scores = [0.0, 0.0]
    if need_removal:
        singles["removal"] = [out[:n_win] @ emb[1], out[n_win : 2 * n_win] @ emb[0]]
        out = out[2 * n_win :]
        for i, img in enumerate(IMAGES):
            gains[img]["single_removal"] = score - singles["removal"][i]
        passes["single_removal"] = 2 * n_win + base_passes
    if need_reveal:
        s = [out[: n_win + 1] @ emb[1], out[n_win + 1 :] @ emb[0]]
        canvas_scores = [float(s[0][0]), float(s[1][0])]
        singles["reveal"] = [s[0][1:], s[1][1:]]
        for i, img in enumerate(IMAGES):
            gains[img]["single_aggregation"] = singles["reveal"][i] - canvas_scores[i]
        passes["single_aggregation"] = 2 * (n_win + 1) + (0 if need_removal else base_passes)
    singles_ms = (time.perf_counter() - t0) * 1000
    single_passes = {m: passes[m] for m in ("single_removal", "single_aggregation") if m in passes}
    for m, n in single_passes.items():  # one shared batch: its time is split by forward passes
        timings[m] = singles_ms * n / sum(single_passes.values())

    traces: dict[str, dict[str, GreedyTrace]] = {"a": {}, "b": {}}
    neighbours = _neighbours(centers, grid)
    runs: list[_GreedyRun] = []
    if "greedy_removal" in methods or "average" in methods:
        drop_stops = score >= threshold  # for a non-match the threshold is already crossed: run K steps
        for i, face in enumerate(faces):
            runs.append(_GreedyRun(face, "greedy_removal", False, score, singles["removal"][i],
                                   lambda s: drop_stops and s < threshold, greedy_steps, windows, neighbours,
                                   greedy, first_block, block))
    if "greedy_aggregation" in methods or "average" in methods:
        for i, face in enumerate(faces):
            runs.append(_GreedyRun(face, "greedy_aggregation", True, canvas_scores[i], singles["reveal"][i],
                                   lambda s: s >= score, greedy_steps, windows, neighbours, greedy, first_block, block))
    if runs:
        t = time.perf_counter()
        _run_greedy(runs, embed)
        greedy_ms = (time.perf_counter() - t) * 1000
        greedy_passes = {m: sum(r.passes for r in runs if r.method == m) for m in dict.fromkeys(r.method for r in runs)}
        total = max(sum(greedy_passes.values()), 1)
        for m, n in greedy_passes.items():  # shared rounds: their time is split by forward passes
            passes[m] = n
            timings[m] = greedy_ms * n / total
        for r in runs:
            traces[IMAGES[0 if r.face is faces[0] else 1]][r.method] = r.trace

    maps: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}}
    t = time.perf_counter()
    for img in IMAGES:
        for m in ("single_removal", "single_aggregation"):
            if m in gains[img]:
                maps[img][m] = normalize(windows_to_map(gains[img][m], windows))
        for m, trace in traces[img].items():
            credit = np.zeros(n_win, np.float32)
            credit[trace.order] = trace.credits
            maps[img][m] = normalize(windows_to_map(credit, windows))
        if "average" in methods:
            maps[img]["average"] = normalize(np.mean([maps[img][m] for m in BASE_METHODS], axis=0))
        maps[img] = {m: maps[img][m] for m in methods}
    if "average" in methods:
        passes["average"] = 0
        timings["average"] = (time.perf_counter() - t) * 1000
    return PairExplanation(
        score=score,
        threshold=float(threshold),
        maps=maps,
        passes=passes,  # every method computed, also the ones `average` or a greedy method needed
        timings_ms=timings,
        traces={img: {m: tr for m, tr in traces[img].items() if m in methods} for img in IMAGES},
        window_gains={img: {m: g for m, g in gains[img].items() if m in methods} for img in IMAGES},
        grid=grid,
        sigma=sigma,
        fill=fill,
        methods=methods,
        windows=n_win,
    )
