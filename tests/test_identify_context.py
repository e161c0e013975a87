"""Identification results in the QA context: who, the runner-up and the lead over it, the claimed subject of a 1:1
check; numbers copied from the result, and pair verification contexts left as they were."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from edgefx.qa.answers import compose
from edgefx.qa.context import build_facts
from edgefx.qa.slots import keys_for
from export.qa_corpus import random_result

MODELS = Path(__file__).resolve().parent.parent / "models"
IDENTITY_KEYS = {"who", "runner_up", "lead", "claimed"}


def _identification(rng: random.Random, n: int = 3, match: bool = True) -> dict[str, Any]:
    """A result shaped like `Identification.to_dict()` (POST /v1/identify): candidates best first."""
    scores = sorted((round(rng.uniform(-0.1, 0.9), 6) for _ in range(n)), reverse=True)
    names = ["Alice Liddell", "Bob Marley", None, "Dana Scully", "Eve"]
    candidates = [{"id": f"id{rng.randrange(10_000)}-{i}", "name": names[i % len(names)], "score": s}
                  for i, s in enumerate(scores)]
    threshold = round(rng.uniform(0.2, 0.5), 6)
    best = scores[0] if scores else None
    return {"match": match and bool(candidates), "subject": candidates[0]["id"] if match and candidates else None,
            "score": best, "threshold": threshold, "confidence": round(rng.uniform(0.5, 1.0), 6),
            "candidates": candidates, "faces": [], "timings_ms": {"total": 12.5},
            "decision": "match" if match else "no match",
            "margin": round(scores[0] - scores[1], 6) if n > 1 else None}


def _by_key(result: dict[str, Any]) -> dict[str, Any]:
    return {f.key: f for f in build_facts(result)}


@pytest.mark.parametrize("seed", range(5))
def test_identification_states_who_runner_up_and_lead_with_the_results_numbers(seed: int) -> None:
    result = _identification(random.Random(seed))
    best, second = result["candidates"][:2]
    facts = _by_key(result)
    assert best["id"] in facts["who"].answer and best["id"] in facts["who"].text
    if best["name"]:
        assert best["name"] in facts["who"].answer
    assert second["id"] in facts["runner_up"].answer and f"{second['score']:.3f}" in facts["runner_up"].text
    assert facts["lead"].answer == f"{best['score'] - second['score']:.3f}"
    assert f"{best['score']:.3f}" in facts["lead"].text and f"{second['score']:.3f}" in facts["lead"].text
    assert facts["score"].answer == f"{result['score']:.3f}" and best["id"] in facts["score"].text
    assert facts["threshold"].answer == f"{result['threshold']:.3f}"
    assert facts["decision"].answer == "a match" and best["id"] in facts["decision"].text
    assert "two photos" not in " ".join(f.text for f in facts.values())
    sentence = compose([(facts["decision"], "a match")], facts)
    assert sentence.startswith("Yes: ") and best["id"] in sentence


def test_no_match_names_nobody_but_says_who_came_closest() -> None:
    result = _identification(random.Random(11), match=False)
    best = result["candidates"][0]
    facts = _by_key(result)
    assert facts["decision"].answer == "no match" and "nobody enrolled" in facts["decision"].text
    assert facts["who"].answer == "not identified as anyone enrolled"
    assert best["id"] in facts["who"].text and f"{best['score']:.3f}" in facts["who"].text
    assert f"{result['threshold']:.3f}" in facts["who"].text
    assert compose([(facts["decision"], "no match")], facts).startswith("No: the photo is judged to show nobody")


def test_one_candidate_has_no_runner_up_and_an_empty_gallery_nobody() -> None:
    facts = _by_key(_identification(random.Random(3), n=1))
    assert facts["runner_up"].answer == "no runner-up" and "lead" not in facts
    empty = _by_key(_identification(random.Random(4), n=0, match=False))
    assert empty["who"].answer == "nobody is enrolled" and empty["decision"].answer == "no match"
    assert "score" not in empty and "runner_up" not in empty


def test_verify_id_names_the_claimed_subject() -> None:
    rng = random.Random(5)
    for match in (True, False):
        result = {**random_result(rng), "match": match, "subject": "badge-0042", "name": "Alice Liddell",
                  "templates_compared": 2}
        facts = _by_key(result)
        assert facts["claimed"].answer == "Alice Liddell (id badge-0042)"
        assert "Alice Liddell (id badge-0042)" in facts["decision"].text
        assert facts["decision"].answer == ("a match" if match else "no match")
        assert facts["score"].answer == f"{result['score']:.3f}" and "badge-0042" in facts["score"].text
        assert ("not to show" in facts["decision"].text) is not match
        assert not {"who", "runner_up", "lead"} & set(facts)


def test_pair_verification_has_no_identification_facts() -> None:
    rng = random.Random(9)
    for _ in range(20):
        result = random_result(rng)
        assert not IDENTITY_KEYS & {f.key for f in build_facts(result)}


@pytest.mark.parametrize("question, keys", [
    ("who came second?", ["runner_up"]), ("which person was the runner-up", ["runner_up"]),
    ("who was the top match", ["who", "claimed"]), ("which region came second in photo a?", ["second:a:average"]),
])
def test_rank_words_about_people_ask_for_candidates_not_regions(question: str, keys: list[str]) -> None:
    assert keys_for("top", question) == keys


def _have_qa_models() -> bool:
    try:
        from edgefx.runtime.manifest import Manifest

        return all(Manifest(MODELS).has(name, "int8") for name in ("qa", "sentence", "intents"))
    except Exception:
        return False


@pytest.fixture(scope="module")
def qa() -> Any:
    if not _have_qa_models():
        pytest.skip("QA models not built: run `python -m export qa`")
    from edgefx.qa.answerer import QuestionAnswerer

    return QuestionAnswerer(precision="int8", backend="onnxruntime", threads=2, models_dir=MODELS)


@pytest.mark.parametrize("question", ["who is this?", "Who is the person in the photo?", "whose face is this"])
def test_who_is_this_answers_with_the_identified_subject(qa: Any, question: str) -> None:
    result = _identification(random.Random(21))
    best = result["candidates"][0]
    answer = qa.answer(build_facts(result), question)
    assert answer.answered and answer.fact == "who", (question, answer)
    assert best["id"] in answer.answer and best["name"] in answer.answer


@pytest.mark.parametrize("question, fact", [("who came second?", "runner_up"),
                                            ("by how much did they beat the runner-up?", "lead")])
def test_runner_up_and_lead_are_answered_from_an_identification(qa: Any, question: str, fact: str) -> None:
    result = _identification(random.Random(22))
    answer = qa.answer(build_facts(result), question)
    assert answer.answered and answer.fact == fact, (question, answer)
    second = result["candidates"][1]
    expected = second["id"] if fact == "runner_up" else f"{result['score'] - second['score']:.3f}"
    assert expected in answer.answer


def test_who_is_this_is_refused_for_a_pair_and_answered_for_a_claim(qa: Any) -> None:
    rng = random.Random(23)
    pair = random_result(rng)
    refused = qa.answer(build_facts(pair), "who is this?")
    assert not refused.answered
    claim = {**pair, "subject": "badge-7", "name": "Bob Marley"}
    answer = qa.answer(build_facts(claim), "who is this?")
    assert answer.answered and answer.fact == "claimed" and "Bob Marley (id badge-7)" in answer.answer
