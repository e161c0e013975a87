"""A question's words as features beside its sentence vector: which of the banks' word unigrams and bigrams it uses."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

MIN_COUNT = 2  # a gram in the vocabulary appears in at least this many bank examples: no single writer's quirk


def grams(text: str) -> set[str]:
    """Word unigrams and bigrams of a normalised question ('face too small' -> face, too, small, face too, ...)."""
    words = re.findall(r"[a-z0-9']+", text)
    return set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])}


def vocabulary(texts: Iterable[str], min_count: int = MIN_COUNT) -> list[str]:
    """The grams found in at least `min_count` texts, sorted: the columns of the lexical features."""
    counts = Counter(g for t in texts for g in grams(t))
    return sorted(g for g, n in counts.items() if n >= min_count)


class LexicalFeatures:
    """Binary gram indicators over a fixed vocabulary, scaled to unit length: a long question is not louder."""

    def __init__(self, vocab: Iterable[str]) -> None:
        self.columns = {g: i for i, g in enumerate(vocab)}

    def __len__(self) -> int:
        return len(self.columns)

    def entries(self, text: str) -> tuple[list[int], float]:
        """The sorted columns this text sets, and the value each holds."""
        cols = sorted(self.columns[g] for g in grams(text) if g in self.columns)
        return cols, (1.0 / np.sqrt(len(cols)) if cols else 0.0)

    def __call__(self, text: str) -> np.ndarray:
        row = np.zeros(len(self.columns))
        cols, value = self.entries(text)
        row[cols] = value
        return row
