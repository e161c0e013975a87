"""The intent regression's word view: grams, vocabulary, and the same feature rows at fit time and at run time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefx.qa.intents import OUT_OF_SCOPE, IntentClassifier
from edgefx.qa.lexical import LexicalFeatures, grams, vocabulary
from export.intents import LEXICAL_WEIGHT, design


def test_grams_are_words_and_word_pairs() -> None:
    assert grams("face too small") == {"face", "too", "small", "face too", "too small"}
    assert grams("what's it?") == {"what's", "it", "what's it"}


def test_vocabulary_keeps_grams_of_several_examples_only() -> None:
    vocab = vocabulary(["how old am i", "how old is he", "what score"])
    assert vocab == ["how", "how old", "old"]


def test_features_are_unit_length_and_ignore_unknown_words() -> None:
    lexical = LexicalFeatures(["how", "how old", "old"])
    row = lexical("how old is the weather")
    assert np.isclose(np.linalg.norm(row), 1.0) and np.count_nonzero(row) == 3
    assert not lexical("weather today").any()


def test_fit_rows_equal_run_time_rows(tmp_path: Path) -> None:
    texts = ["how old is he", "what was my score", "score too low why"]
    vocab = vocabulary(texts + ["how old", "my score", "why low"], min_count=1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 4))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    classes = ["score", OUT_OF_SCOPE]
    path = tmp_path / "w.npz"
    np.savez(path, W=np.zeros((4 + len(vocab), 2)), b=np.zeros(2), classes=np.array(classes), threshold=0.5,
             banks_sha256=np.array("x"), grams=np.array(vocab), lexical_weight=np.float64(LEXICAL_WEIGHT))
    classifier = IntentClassifier(path)
    fitted = design(X, texts, LexicalFeatures(vocab)).toarray()
    for i, text in enumerate(texts):
        assert np.allclose(fitted[i], classifier.features(X[i], text))
