"""The intent regression's word and letter views: grams, vocabulary, and the same rows at fit time and at run time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgefx.qa.intents import OUT_OF_SCOPE, IntentClassifier
from edgefx.qa.lexical import LexicalFeatures, char_grams, grams, vocabulary
from edgefx.runtime.errors import ModelError
from export.intents import CHAR_WEIGHT, LEXICAL_WEIGHT, design


def test_grams_are_words_and_word_pairs() -> None:
    assert grams("face too small") == {"face", "too", "small", "face too", "too small"}
    assert grams("what's it?") == {"what's", "it", "what's it"}


def test_letter_grams_stay_inside_words_and_survive_a_typo() -> None:
    assert char_grams("is it") == {"#is", "is#", "#is#", "#it", "it#", "#it#"}
    right, typo = char_grams("blurry"), char_grams("blurry".replace("u", "i"))
    assert len(right & typo) >= 3 and "#bl" in typo and "ry#" in typo


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
    words = vocabulary(texts + ["how old", "my score", "why low"], min_count=1)
    letters = vocabulary(texts + ["scores", "lower"], min_count=2, view="chars")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 4))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    classes = ["score", OUT_OF_SCOPE]
    path = tmp_path / "w.npz"
    np.savez(path, W=np.zeros((4 + len(words) + len(letters), 2)), b=np.zeros(2), classes=np.array(classes),
             threshold=0.5, banks_sha256=np.array("x"), grams=np.array(words), lexical_weight=np.float64(LEXICAL_WEIGHT),
             char_grams=np.array(letters), char_weight=np.float64(CHAR_WEIGHT))
    classifier = IntentClassifier(path)
    views = [(LexicalFeatures(words, "words"), LEXICAL_WEIGHT), (LexicalFeatures(letters, "chars"), CHAR_WEIGHT)]
    fitted = design(X, texts, views).toarray()
    assert fitted.shape == (3, 4 + len(words) + len(letters)) and len(letters) > 0
    for i, text in enumerate(texts):
        assert np.allclose(fitted[i], classifier.features(X[i], text))


def test_weights_from_an_older_export_are_refused_with_a_rebuild_message(tmp_path: Path) -> None:
    path = tmp_path / "old.npz"  # the word-grams-only weights of the export before the letter grams
    np.savez(path, W=np.zeros((5, 2)), b=np.zeros(2), classes=np.array(["score", OUT_OF_SCOPE]), threshold=0.5,
             banks_sha256=np.array("x"), grams=np.array(["score"]), lexical_weight=np.float64(1.0))
    with pytest.raises(ModelError, match="char_grams, char_weight.*make models"):
        IntentClassifier(path)
