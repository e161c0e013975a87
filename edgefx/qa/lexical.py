"""A question's words as features beside its sentence vector: which of the banks' word and letter grams it uses."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable

import numpy as np

MIN_COUNT = 2  # a gram in the vocabulary appears in at least this many bank examples: no single writer's quirk
CHAR_SIZES = (3, 4)


def grams(text: str) -> set[str]:
    """Word unigrams and bigrams of a normalised question ('face too small' -> face, too, small, face too, ...)."""
    words = re.findall(r"[a-z0-9']+", text)
    return set(words) | {f"{a} {b}" for a, b in zip(words, words[1:])}


def char_grams(text: str) -> set[str]:
    """Letter 3- and 4-grams inside each word padded with '#' ('#dark#' -> #da, dar, ark, rk#, #dar, ...): a typo
    the speller missed, or another form of the word ('darker'), still shares most of them."""
    out: set[str] = set()
    for word in re.findall(r"[a-z0-9']+", text):
        padded = f"#{word}#"
        for size in CHAR_SIZES:
            out |= {padded[i:i + size] for i in range(len(padded) - size + 1)}
    return out


VIEWS: dict[str, Callable[[str], set[str]]] = {"words": grams, "chars": char_grams}


def vocabulary(texts: Iterable[str], min_count: int = MIN_COUNT, view: str = "words") -> list[str]:
    """The grams of `view` found in at least `min_count` texts, sorted: the columns of the lexical features."""
    counts = Counter(g for t in texts for g in VIEWS[view](t))
    return sorted(g for g, n in counts.items() if n >= min_count)


class LexicalFeatures:
    """Binary gram indicators of one view over a fixed vocabulary, scaled to unit length: a long question is not
    louder."""

    def __init__(self, vocab: Iterable[str], view: str = "words") -> None:
        self.columns = {g: i for i, g in enumerate(vocab)}
        self.grams_of = VIEWS[view]

    def __len__(self) -> int:
        return len(self.columns)

    def entries(self, text: str) -> tuple[list[int], float]:
        """The sorted columns this text sets, and the value each holds."""
        cols = sorted(self.columns[g] for g in self.grams_of(text) if g in self.columns)
        return cols, (1.0 / np.sqrt(len(cols)) if cols else 0.0)

    def __call__(self, text: str) -> np.ndarray:
        row = np.zeros(len(self.columns))
        cols, value = self.entries(text)
        row[cols] = value
        return row
