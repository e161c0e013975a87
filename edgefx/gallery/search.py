"""1:N search: every enrolled template in one float32 matrix; each subject's score is the best of its templates; the
top-k subjects come back best first. Large galleries are scanned in int8 first and only a provably sufficient
shortlist is scored in float32, so the answer is the same as the float32 product over everything."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgefx.gallery.coarse import CoarseScan, shortlist

# From this many templates on, the int8 scan + float32 re-rank (one onnxruntime thread, 0.25-0.5 ms at 10,000-20,000)
# beats the float32 product alone; below it the product is used alone (0.03-0.16 ms at 2,000 vs 0.3 ms). Measured with
# /tmp scripts and `edgefx bench identify` on AMD EPYC Zen 3, 2 cores, AVX2, under load 5-8: from ~5,000 rows OpenBLAS
# splits the product over both cores and then often waits ~12 ms for the busy one (README, search table).
COARSE_FROM_TEMPLATES = 10_000


@dataclass(frozen=True)
class Hit:
    """One candidate subject: its index in the matrix, its best score, and the row (template) that gave it."""

    subject: int
    score: float
    row: int


@dataclass
class TemplateMatrix:
    """Unit-norm template rows grouped by subject: subject s owns rows starts[s] .. starts[s + 1] - 1."""

    embeddings: np.ndarray  # (N, D) float32
    template_ids: list[str]
    subject_ids: list[str]
    starts: np.ndarray  # (S,) int64, ascending, starts[0] == 0
    coarse: CoarseScan | None = field(default=None, repr=False)  # the int8 scan, for large galleries only

    @classmethod
    def build(cls, rows: list[tuple[str, str, np.ndarray]], dim: int, coarse_from: int = COARSE_FROM_TEMPLATES,
              threads: int = 1) -> "TemplateMatrix":
        """From (subject id, template id, embedding) rows, in any order; an int8 scan from `coarse_from` rows on."""
        rows = sorted(rows, key=lambda r: (r[0], r[1]))
        matrix = np.ascontiguousarray(np.stack([r[2] for r in rows]).astype(np.float32)) if rows else \
            np.zeros((0, dim), np.float32)
        subjects = [r[0] for r in rows]
        starts = np.array([i for i in range(len(subjects)) if i == 0 or subjects[i] != subjects[i - 1]], np.int64)
        large = len(rows) >= max(coarse_from, 1) and dim > 0
        coarse = CoarseScan.build(matrix, threads) if large and np.isfinite(matrix).all() else None  # bound needs it
        return cls(matrix, [r[1] for r in rows], [subjects[i] for i in starts], starts, coarse)

    @property
    def size(self) -> int:
        return len(self.subject_ids)

    @property
    def one_per_subject(self) -> bool:
        return len(self.starts) == len(self.template_ids)

    def subject_scores(self, probe: np.ndarray) -> np.ndarray:
        """(S,) the exact best cosine of each subject: one matrix-vector product, one segmented max."""
        if not len(self.template_ids):
            return np.zeros(0, np.float32)
        scores = self.embeddings @ np.asarray(probe, np.float32)
        return scores if self.one_per_subject else np.maximum.reduceat(scores, self.starts)

    def search(self, probe: np.ndarray, top: int, exact: bool = False) -> list[Hit]:
        """The `top` best subjects, best first (ties: subject id order); `exact` skips the int8 scan (the same
        subjects and rows either way; scores may differ in the last float32 bit, the product runs over fewer rows)."""
        k = min(max(top, 1), self.size)
        if k == 0:
            return []
        probe32 = np.asarray(probe, np.float32)
        if self.coarse is not None and not exact and np.isfinite(probe32).all():
            raw, factor, eps = self.coarse.scores(probe32)
            coarse_best = raw if self.one_per_subject else np.maximum.reduceat(raw, self.starts)
            subjects = shortlist(coarse_best, factor, eps, k, max(64, 8 * k))
            if len(subjects) <= self.size // 4:  # else (rows far from unit norm: a loose bound) gathering costs more
                return self.ranked(subjects, self.exact_scores(subjects, probe32), probe32, k)
        return self.ranked(np.arange(self.size), self.subject_scores(probe32), probe32, k)

    def exact_scores(self, subjects: np.ndarray, probe: np.ndarray) -> np.ndarray:
        """The float32 best score of each of `subjects` (ascending indices) over its templates."""
        if self.one_per_subject:
            return self.embeddings[subjects] @ probe
        ends = np.append(self.starts[1:], len(self.template_ids))
        lengths = ends[subjects] - self.starts[subjects]
        offsets = np.cumsum(lengths) - lengths  # where each subject's rows begin in the gathered block
        rows = np.arange(int(lengths.sum())) - np.repeat(offsets, lengths) + np.repeat(self.starts[subjects], lengths)
        return np.maximum.reduceat(self.embeddings[rows] @ probe, offsets)

    def ranked(self, subjects: np.ndarray, scores: np.ndarray, probe: np.ndarray, k: int) -> list[Hit]:
        """The k best of `subjects` (ascending) by `scores`, best first, ties in subject order, each with the row
        (template) that gave its score."""
        if k < len(scores):  # every subject tied with the k-th stays in, so ties resolve by id, not by partition
            kth = np.partition(scores, len(scores) - k)[len(scores) - k]
            kept = np.flatnonzero(scores >= kth)
        else:
            kept = np.arange(len(scores))
        kept = kept[np.lexsort((kept, -scores[kept]))][:k]
        ends = np.append(self.starts[1:], len(self.template_ids))
        hits = []
        for i in kept:
            s = int(subjects[i])
            rows = self.embeddings[self.starts[s]:ends[s]] @ probe
            hits.append(Hit(s, float(scores[i]), int(self.starts[s] + int(np.argmax(rows)))))
        return hits
