"""Every kind of context sentence carries retrieval hint words, so questions in everyday words can find it."""

from __future__ import annotations

import random

import numpy as np
import pytest

from edgefx.qa.context import build_facts
from edgefx.qa.retrieval import focus_scores, retrieval_key, retrieval_text, sentence_hint
from export.qa_corpus import generate_retrieval, random_result


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


def _facts_by_key(seed: int = 11) -> dict[str, str]:
    rng = random.Random(seed)
    while True:
        facts = {f.key: f.text for f in build_facts(random_result(rng))}
        if "top:b:average" in facts:
            return facts


@pytest.mark.parametrize("question,gold,sibling", [
    ("what mattered most in pic 2", "top:b:average", "second:b:average"),
    ("in the second picture what feature was the biggest factor", "top:b:average", "second:b:average"),
    ("which region came second in photo A", "second:a:average", "top:a:average"),
    ("what counted least in the first image", "least:a:average", "top:a:average"),
    ("top region for greedy removal in the second photo", "top:b:greedy_removal", "top:a:greedy_removal"),
])
def test_focus_prefers_the_rank_photo_and_method_named(question: str, gold: str, sibling: str) -> None:
    """"second" in "the second picture" names the photo, not the rank; the rank words left decide."""
    facts = _facts_by_key()
    scores = focus_scores(question, [facts[gold], facts[sibling]])
    assert scores[0] > scores[1], (question, scores)


def test_retrieval_key_masks_numbers_and_adds_hints() -> None:
    key = retrieval_key("The decision threshold is 0.363.")
    assert "0.363" not in key and key.endswith("The decision threshold is N.") and "cutoff" in key
    assert retrieval_key("The decision threshold is 0.310.") == key


def test_retrieval_corpus_pairs_questions_with_their_gold_sentence() -> None:
    examples = generate_retrieval(5, 30, 10)
    assert examples == generate_retrieval(5, 30, 10)  # deterministic
    answerable = [e for e in examples if e.positive is not None]
    assert 0.05 < 1 - len(answerable) / len(examples) < 0.25  # about 12 % unanswerable
    assert all(e.negative != e.positive for e in examples)
    assert len({e.question for e in examples}) > 0.8 * len(examples)


def _synthetic_readings(n: int = 200, contexts: int = 4) -> tuple[list, list]:  # type: ignore[type-arg]
    """Half right (relevant, confident, clear winner), half wrong; spread over `contexts` contexts."""
    from edgefx.evaluation.qa_eval import DevQuestion

    rng = np.random.default_rng(0)
    rows, predictions = [], []
    for i in range(n):
        right = i % 2 == 0
        relevance = rng.normal(0.9 if right else 0.4, 0.15)
        log_odds = rng.normal(4.0 if right else 0.0, 2.0)
        margin = rng.normal(0.3 if right else 0.05, 0.1)
        rows.append(DevQuestion(str(i), f"c{i % contexts}", "q", ("yes",)))
        predictions.append({"span": "yes" if right else "no", "features": (relevance, log_odds, margin)})
    return rows, predictions


def test_confidence_fit_ranks_better_readings_higher() -> None:
    """The logistic fit learns that a more relevant, clearer reading is more often right."""
    from edgefx.evaluation.qa_eval import fit_confidence

    rows, predictions = _synthetic_readings()
    model = fit_confidence(rows, predictions)
    assert model.relevance > 0 and model.margin > 0
    assert model(0.95, 5.0, 0.4) > 0.9
    assert model(0.3, -2.0, 0.0) < 0.1


def test_leave_one_context_out_scores_every_question_once() -> None:
    from edgefx.evaluation.qa_eval import leave_one_context_out

    rows, predictions = _synthetic_readings()
    report = leave_one_context_out(rows, predictions)
    assert report["questions"] == len(rows) and report["answerable"] == len(rows)
    # Half the readings are right and well separated: nearly all of them answered, few wrong ones let through.
    assert 0.45 < report["correct_fact"] <= 0.5 and report["wrong_confident"] < 0.05
