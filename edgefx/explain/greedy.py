"""Greedy removal and aggregation (G-, G+): traces of windows taken one by one, run together and lazily."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from edgefx.explain.windows import CROP_SIZE, composite

NEAR_MARGIN = 0.02
FAR_MARGIN = 0.005
NEIGHBOUR_REACH = 1.5  # cells (Chebyshev distance between window centres): the 8 surrounding windows

Embed = Callable[[np.ndarray], np.ndarray]


@dataclass
class GreedyTrace:
    """The windows a greedy method took, in order, with the score after each step."""

    order: list[int] = field(default_factory=list)
    credits: list[float] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


class OccludedFace:
    """Per-face constants: crop, fill, the target embedding it is scored against."""

    def __init__(self, crop: np.ndarray, fill: np.ndarray, target: np.ndarray) -> None:
        self.crop = crop
        self.fill = fill
        self.target = target


def target_scores(embed: Embed, batch: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Cosine of each image's embedding with its target row (embeddings are unit-norm)."""
    if len(batch) == 0:
        return np.zeros(0, dtype=np.float32)
    emb = np.asarray(embed(batch), dtype=np.float32)
    return np.einsum("nd,nd->n", emb, targets)


def neighbour_mask(centers: np.ndarray, grid: int) -> np.ndarray:
    """(W, W) bool: windows whose centres are at most one cell apart, diagonals included (not itself)."""
    cell = CROP_SIZE / grid
    d = np.abs(centers[:, None, :] - centers[None, :, :]).max(axis=2)
    return (d <= NEIGHBOUR_REACH * cell) & ~np.eye(len(centers), dtype=bool)


class GreedyRun:
    """One greedy trace (a face, removal or reveal) in progress, with its lazy-evaluation state.

    A step scores candidate windows in chunks, most promising first by an optimistic bound (last
    known gain + a margin, larger for the windows overlapping the one just taken), and takes the
    best fresh gain once it beats the bound of every window not yet re-scored, widened by the
    largest gain growth seen among the re-scored ones. `full` scores every available window.
    """

    def __init__(self, face: OccludedFace, method: str, reveal: bool, start_score: float, first_scores: np.ndarray,
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


def run_greedy(runs: list[GreedyRun], embed: Embed) -> int:
    """Advances every run together: each round embeds all runs' next chunks as one batch. Returns the rounds."""
    rounds = 0
    while True:
        live = [r for r in runs if r.active]
        if not live:
            return rounds
        requests = [(r, *r.next_chunk()) for r in live]
        targets = np.concatenate([np.broadcast_to(r.face.target, (len(c), r.face.target.shape[0]))
                                  for r, c, _ in requests])
        scores = target_scores(embed, np.concatenate([img for _, _, img in requests]), targets)
        rounds += 1
        pos = 0
        for r, chunk, _ in requests:
            r.feed(chunk, scores[pos : pos + len(chunk)])
            pos += len(chunk)
