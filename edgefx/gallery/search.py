"""1:N search: every enrolled template in one float32 matrix, scored against a probe by one matrix product; each
subject's score is the best of its templates; the top-k subjects come back best first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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

    @classmethod
    def build(cls, rows: list[tuple[str, str, np.ndarray]], dim: int) -> "TemplateMatrix":
        """From (subject id, template id, embedding) rows, in any order."""
        rows = sorted(rows, key=lambda r: (r[0], r[1]))
        matrix = np.ascontiguousarray(np.stack([r[2] for r in rows]).astype(np.float32)) if rows else \
            np.zeros((0, dim), np.float32)
        subjects = [r[0] for r in rows]
        starts = np.array([i for i in range(len(subjects)) if i == 0 or subjects[i] != subjects[i - 1]], np.int64)
        return cls(matrix, [r[1] for r in rows], [subjects[i] for i in starts], starts)

    @property
    def size(self) -> int:
        return len(self.subject_ids)

    def subject_scores(self, probe: np.ndarray) -> np.ndarray:
        """(S,) the best cosine of each subject: one matrix-vector product, one segmented max."""
        if not len(self.template_ids):
            return np.zeros(0, np.float32)
        scores = self.embeddings @ np.asarray(probe, np.float32)
        return np.maximum.reduceat(scores, self.starts)

    def search(self, probe: np.ndarray, top: int) -> list[Hit]:
        """The `top` best subjects, best first (ties: subject id order)."""
        best = self.subject_scores(probe)
        k = min(max(top, 1), len(best))
        if k == 0:
            return []
        chosen = np.argpartition(-best, k - 1)[:k] if k < len(best) else np.arange(len(best))
        chosen = chosen[np.lexsort((chosen, -best[chosen]))]
        ends = np.append(self.starts[1:], len(self.template_ids))
        probe32 = np.asarray(probe, np.float32)
        hits = []
        for s in chosen:
            rows = self.embeddings[self.starts[s]:ends[s]] @ probe32
            hits.append(Hit(int(s), float(best[s]), int(self.starts[s] + int(np.argmax(rows)))))
        return hits
