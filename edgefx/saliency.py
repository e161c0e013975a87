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

Speed comes from (1) building every masked variant of a step as one broadcast array and embedding
both faces' variants in one batch, (2) greedy steps only scoring windows still available, (3) the
first greedy step reusing the single-window scores (they are the same forward passes), and (4) lazy
greedy: a step scores the windows around the one just taken plus the `block` best by their last
known gain, and stops once the best fresh gain beats every stale gain left, widened by the largest
gain growth seen in the step. Plain lazy greedy is exact only under diminishing returns, which a
network does not promise: on 12 DevTrain pairs (48 greedy traces, K=8, full 5x5 grid) plain lazy kept the full
greedy order in 22/48 traces (block 4), this variant in 45/48 with about half the passes of full
greedy. `greedy="full"` gives the exact order at full cost; `edgefx bench explain` reports the
agreement on DevTest.

Defaults, measured on LFW DevTrain (12 pairs, 6 matched, SFace fp32, all 25 windows; pixel-order deletion/insertion
AUC of the S- and S+ maps evaluated with both fills, lower deletion / higher insertion is better;
random order: deletion 0.37, insertion 0.37 on matched pairs):
  grid 5, sigma 0.5 cell, blur  S- deletion 0.224 insertion 0.510   S+ 0.221 / 0.497
  grid 5, sigma 0.5 cell, mean  S- 0.244 / 0.508                    S+ 0.246 / 0.487
  grid 5, sigma 0.7 cell, blur  S- 0.235 / 0.509                    S+ 0.228 / 0.498
  grid 7, sigma 0.5 cell, blur  S- 0.206 / 0.515                    S+ 0.212 / 0.499
A 7x7 grid is a little more faithful but costs twice the passes (98 per single map for both faces):
the 400 ms budget for S- and S+ allows about 100 passes at ~4 ms each, so grid 5. sigma 0.35 cell
leaves gaps (window coverage dips to 0.5 between centres); 0.7 blurs neighbouring windows together.
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


def _greedy(
    faces: list[_Face],
    windows: np.ndarray,
    centers: np.ndarray,
    grid: int,
    embed: Embed,
    start_scores: list[float],
    first_scores: list[np.ndarray],
    reveal: bool,
    stop: Callable[[int, float], bool],
    steps: int,
    mode: str,
    block: int,
) -> tuple[list[GreedyTrace], int]:
    """Greedy removal (reveal=False) or aggregation (reveal=True) for all faces at once.

    `first_scores[f]` are the scores of taking each single window from the start state (the single
    method's passes), so step 1 needs no forward pass. Returns the traces and the passes spent.
    """
    n_win = len(windows)
    sign = 1.0 if reveal else -1.0  # gain = sign * (new score - current score)
    neighbours = _neighbours(centers, grid)
    keep = [np.ones((CROP_SIZE, CROP_SIZE), np.float32) for _ in faces]
    current = list(start_scores)
    available = [np.ones(n_win, bool) for _ in faces]
    stale = [sign * (np.asarray(s, np.float32) - c) for s, c in zip(first_scores, current)]
    traces = [GreedyTrace() for _ in faces]
    active = [steps > 0 and not stop(f, current[f]) for f in range(len(faces))]
    passes = 0

    def base_other(f: int) -> tuple[np.ndarray, np.ndarray]:
        face = faces[f]
        return (face.fill, face.crop) if reveal else (face.crop, face.fill)

    def take(f: int, k: int, new_score: float) -> None:
        gain = sign * (new_score - current[f])
        traces[f].order.append(int(k))
        traces[f].credits.append(float(gain))
        traces[f].scores.append(float(new_score))
        keep[f] = keep[f] * (1.0 - windows[k])
        available[f][k] = False
        current[f] = float(new_score)

    # step 1 is known from the single-window scores
    for f in range(len(faces)):
        if active[f]:
            k = int(np.argmax(stale[f]))
            take(f, k, float(first_scores[f][k]))
    for _ in range(1, steps):
        for f in range(len(faces)):
            active[f] = active[f] and available[f].any() and not stop(f, current[f])
        todo = [f for f in range(len(faces)) if active[f]]
        if not todo:
            break
        fresh: dict[int, dict[int, float]] = {f: {} for f in todo}
        growth = {f: 0.0 for f in todo}
        first_block: dict[int, int] = {}
        if mode == "full":
            queue = {f: list(np.flatnonzero(available[f])) for f in todo}
        else:
            queue = {}
            for f in todo:
                by_stale = sorted(np.flatnonzero(available[f]), key=lambda k, f=f: -stale[f][k])
                # the windows overlapping the one just taken change most: score them first
                near = [k for k in by_stale if neighbours[traces[f].order[-1], k]]
                queue[f] = near + [k for k in by_stale if k not in near]
                first_block[f] = len(near) + block
        pending = list(todo)
        while pending:
            requests: list[tuple[int, list[int]]] = []
            for f in pending:
                size = len(queue[f]) if mode == "full" else first_block.pop(f, block)
                chunk = queue[f][:size]
                queue[f] = queue[f][len(chunk):]
                requests.append((f, chunk))
            images, targets = [], []
            for f, chunk in requests:
                base, other = base_other(f)
                images.append(composite(base, other, keep[f][None] * (1.0 - windows[chunk])))
                targets.append(np.broadcast_to(faces[f].target, (len(chunk), faces[f].target.shape[0])))
            scores = _scores(embed, np.concatenate(images), np.concatenate(targets))
            passes += len(scores)
            pos = 0
            for f, chunk in requests:
                for k in chunk:
                    fresh[f][k] = float(scores[pos])
                    gain = sign * (float(scores[pos]) - current[f])
                    growth[f] = max(growth[f], gain - float(stale[f][k]))
                    stale[f][k] = gain
                    pos += 1
            still = []
            for f in pending:
                best_k = max(fresh[f], key=lambda k, f=f: (sign * fresh[f][k], -k))
                best_gain = sign * (fresh[f][best_k] - current[f])
                # a stale gain is only an upper bound if gains shrink; allow the growth seen in this step
                bound = max((stale[f][k] for k in queue[f]), default=-np.inf) + growth[f]
                if queue[f] and best_gain < bound:
                    still.append(f)
                else:
                    take(f, best_k, fresh[f][best_k])
            pending = still
    return traces, passes


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
    if block < 1:
        raise InvalidRequest(f"block must be >= 1, got {block}")
    sigma = float(default_sigma(grid) if sigma is None else sigma)
    crops = [_check_crop(crop_a, "a"), _check_crop(crop_b, "b")]
    windows = gaussian_windows(grid, sigma, corners)
    centers = window_centers(grid, corners)
    n_win = len(windows)
    passes: dict[str, int] = {}
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    if embeddings is None:
        emb = np.asarray(embed(np.stack(crops)), dtype=np.float32)
        base_passes = 2
    else:
        emb = np.stack([np.asarray(e, np.float32).ravel() for e in embeddings])
        base_passes = 0
    score = float(emb[0] @ emb[1])
    fills = [neutral_fill(c, fill) for c in crops]
    faces = [_Face(crops[0], fills[0], emb[1]), _Face(crops[1], fills[1], emb[0])]
    base_ms = (time.perf_counter() - t0) * 1000

    need_removal = any(m in methods for m in ("single_removal", "greedy_removal", "average"))
    need_reveal = any(m in methods for m in ("single_aggregation", "greedy_aggregation", "average"))
    gains: dict[str, dict[str, np.ndarray]] = {"a": {}, "b": {}}
    singles: dict[str, list[np.ndarray]] = {}
    canvas_scores = [0.0, 0.0]

    if need_removal:
        t = time.perf_counter()
        keep = 1.0 - windows
        batch = np.empty((2 * n_win, CROP_SIZE, CROP_SIZE, 3), np.float32)
        for i, f in enumerate(faces):
            composite(f.crop, f.fill, keep, out=batch[i * n_win : (i + 1) * n_win])
        targets = np.concatenate([np.broadcast_to(f.target, (n_win, f.target.shape[0])) for f in faces])
        s = _scores(embed, batch, targets)
        singles["removal"] = [s[:n_win], s[n_win:]]
        for i, img in enumerate(IMAGES):
            gains[img]["single_removal"] = score - singles["removal"][i]
        passes["single_removal"] = 2 * n_win + base_passes
        timings["single_removal"] = (time.perf_counter() - t) * 1000 + base_ms
    if need_reveal:
        t = time.perf_counter()
        keep = 1.0 - windows
        batch = np.empty((2 * (n_win + 1), CROP_SIZE, CROP_SIZE, 3), np.float32)
        for i, f in enumerate(faces):
            start = i * (n_win + 1)
            batch[start] = f.fill
            composite(f.fill, f.crop, keep, out=batch[start + 1 : start + 1 + n_win])
        targets = np.concatenate([np.broadcast_to(f.target, (n_win + 1, f.target.shape[0])) for f in faces])
        s = _scores(embed, batch, targets)
        canvas_scores = [float(s[0]), float(s[n_win + 1])]
        singles["reveal"] = [s[1 : n_win + 1], s[n_win + 2 :]]
        for i, img in enumerate(IMAGES):
            gains[img]["single_aggregation"] = singles["reveal"][i] - canvas_scores[i]
        passes["single_aggregation"] = 2 * (n_win + 1) + (0 if need_removal else base_passes)
        timings["single_aggregation"] = (time.perf_counter() - t) * 1000 + (0 if need_removal else base_ms)

    traces: dict[str, dict[str, GreedyTrace]] = {"a": {}, "b": {}}
    if "greedy_removal" in methods or "average" in methods:
        t = time.perf_counter()
        drop_stops = score >= threshold  # for a non-match the threshold is already crossed: run K steps

        def removal_done(f: int, s: float) -> bool:
            return drop_stops and s < threshold

        tr, n = _greedy(faces, windows, centers, grid, embed, [score, score], singles["removal"], False, removal_done,
                        greedy_steps, greedy, block)
        for i, img in enumerate(IMAGES):
            traces[img]["greedy_removal"] = tr[i]
        passes["greedy_removal"] = n
        timings["greedy_removal"] = (time.perf_counter() - t) * 1000
    if "greedy_aggregation" in methods or "average" in methods:
        t = time.perf_counter()

        def reveal_done(f: int, s: float) -> bool:
            return s >= score

        tr, n = _greedy(faces, windows, centers, grid, embed, canvas_scores, singles["reveal"], True, reveal_done,
                        greedy_steps, greedy, block)
        for i, img in enumerate(IMAGES):
            traces[img]["greedy_aggregation"] = tr[i]
        passes["greedy_aggregation"] = n
        timings["greedy_aggregation"] = (time.perf_counter() - t) * 1000

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
