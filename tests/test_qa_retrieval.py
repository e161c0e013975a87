"""Every kind of context sentence carries retrieval hint words, so questions in everyday words can find it."""

from __future__ import annotations

import random

from edgefx.context import build_facts
from edgefx.qa import retrieval_text, sentence_hint
from export.qa_corpus import random_result


def test_every_kind_of_context_sentence_has_a_retrieval_hint() -> None:
    rng = random.Random(7)
    for _ in range(20):
        for fact in build_facts(random_result(rng)):
            assert sentence_hint(fact.text), fact.text


def test_hints_only_prefix_the_sentence() -> None:
    """Retrieval sees hint + sentence; the sentence itself (the reader's input and the evidence) is unchanged."""
    sentence = "The decision threshold is 0.363."
    assert retrieval_text(sentence).endswith(". " + sentence)
    assert "cutoff" in retrieval_text(sentence)
    assert retrieval_text("An unrelated sentence.") == "An unrelated sentence."
