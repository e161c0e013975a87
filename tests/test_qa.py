"""Questions as people ask them: the intent, slots and facts they resolve to, answers as sentences whose numbers are
the result's, refusals for what the result cannot know, and typed errors for bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edgefx.qa.answerer import MAX_QUESTION_CHARS, REFUSAL, validate_question
from edgefx.qa.answers import compose
from edgefx.qa.context import build_facts
from edgefx.qa.slots import keys_for, methods_in, photos_in, regions_in
from edgefx.runtime.errors import InvalidQuestion

RESULTS = Path(__file__).parent / "data" / "qa_dev_results.json"
MODELS = Path(__file__).resolve().parent.parent / "models"
NUMBER = re.compile(r"\d+(?:\.\d+)?")


def _have_models() -> bool:
    try:
        from edgefx.runtime.manifest import Manifest

        manifest = Manifest(MODELS)
        return all(manifest.has(name, "int8") for name in ("qa", "sentence", "intents"))
    except Exception:
        return False


needs_models = pytest.mark.skipif(not _have_models(), reason="QA models not built: run `python -m export qa`")


@pytest.fixture(scope="module")
def qa():  # type: ignore[no-untyped-def]
    from edgefx.qa.answerer import QuestionAnswerer

    return QuestionAnswerer(precision="int8", backend="onnxruntime", threads=2, models_dir=MODELS)


def _real(genuine: bool) -> dict:
    stored = json.loads(RESULTS.read_text())
    return next(e for e in stored.values() if e["genuine"] == genuine)["result"]


@pytest.mark.parametrize("bad", ["", "   \n\t", "x" * 10_000, "why? " * 300])
def test_bad_questions_raise_a_typed_error(bad: str) -> None:
    with pytest.raises(InvalidQuestion) as err:
        validate_question(bad)
    assert err.value.code == "invalid_question" and err.value.status == 422
    assert str(MAX_QUESTION_CHARS) in err.value.message or "empty" in err.value.message


def test_non_text_question_is_rejected() -> None:
    with pytest.raises(InvalidQuestion):
        validate_question(None)


@pytest.mark.parametrize("question, photos", [
    ("what region mattered in the left one", ["a"]), ("in the second picture?", ["b"]), ("in photo 2", ["b"]),
    ("my photo", ["b"]), ("the reference picture", ["a"]), ("which part of the face", ["b", "a"]),
    ("how important was the left eye", ["b", "a"]),  # a region's side is not a photo
])
def test_photo_references(question: str, photos: list[str]) -> None:
    assert photos_in(question) == photos


def test_method_and_region_slots() -> None:
    assert methods_in("what does s- do") == ["single_removal"]
    assert methods_in("by greedy") == ["greedy_removal", "greedy_aggregation"]
    assert regions_in("the left eye and the nose") == ["left_eye", "nose"]
    assert keys_for("top", "second most important region in photo a by g+") == ["second:a:greedy_aggregation"]
    assert keys_for("time", "how long did detection take") == ["time:detect"]
    assert keys_for("time", "how long did comparing the embeddings take") == ["time:decide"]
    assert keys_for("time", "how long did computing the embeddings and comparing them take") == \
        ["time:embed", "time:decide"]


@pytest.mark.parametrize("genuine", [True, False])
def test_every_number_in_an_answer_sentence_is_the_results(genuine: bool) -> None:
    facts = build_facts(_real(genuine))
    by_key = {f.key: f for f in facts}
    stated = {n for f in facts for n in NUMBER.findall(f.text)}
    for fact in facts:
        sentence = compose([(fact, fact.answer)], by_key)
        assert set(NUMBER.findall(sentence)) <= stated, (fact.key, sentence)
        assert fact.answer.split()[0].strip("%") in sentence or fact.key.startswith("decision"), (fact.key, sentence)


def test_decision_sentence_gives_verdict_score_threshold_and_confidence() -> None:
    result = _real(False)
    by_key = {f.key: f for f in build_facts(result)}
    sentence = compose([(by_key["decision"], by_key["decision"].answer)], by_key)
    assert sentence.startswith("No: ") and "two different people" in sentence
    assert f"{result['score']:.3f}" in sentence and f"{result['threshold']:.3f}" in sentence
    assert f"{100 * result['confidence']:.1f}%" in sentence


@needs_models
@pytest.mark.parametrize("question", [
    "how old is the person on the left",  # age
    "what is the name of the man in the second photo",  # name
    "what colour shirt is he wearing",  # clothing
    "does he look happy in the first picture",  # emotion
    "where was the second picture taken",  # where
    "when was the reference photo taken",  # when
    "what is in the background of my photo",  # background
    "who is the other person standing behind him",  # another person
    "open the door for me",  # the door
    "is it going to rain today",  # the weather
])
def test_near_miss_questions_are_refused(qa, question: str) -> None:  # type: ignore[no-untyped-def]
    answer = qa.answer(build_facts(_real(True)), question)
    assert not answer.answered and answer.answer == REFUSAL and answer.suggestions, (question, answer)


@needs_models
@pytest.mark.parametrize("question, fact", [
    ("was it a match?", "decision"), ("give me the cosine score", "score"),
    ("what's the cut-off the score is compared against", "threshold"), ("why did it decide that", "why"),
    ("what should I do to get in?", "advice"), ("how sure are you", "confidence"),
])
def test_plain_questions_get_their_fact_as_a_sentence(qa, question: str, fact: str) -> None:  # type: ignore[no-untyped-def]
    result = _real(False)
    answer = qa.answer(build_facts(result), question)
    if fact == "advice" and "quality" not in result["faces"][0]:
        assert not answer.answered  # a stored result without quality has no advice to give
        return
    assert answer.answered and answer.fact == fact, (question, answer)
    assert answer.answer.endswith(".") and answer.value and answer.evidence
    data = answer.to_dict()
    assert {"answer", "value", "fact", "confidence", "evidence", "suggestions", "answered"} <= set(data)


def _degraded(image: bytes, how: str) -> bytes:
    import cv2
    import numpy as np

    bgr = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    if how == "small":
        bgr = cv2.resize(bgr, None, fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)
    elif how == "dark":
        bgr = (bgr.astype(np.float32) * 0.15).astype(np.uint8)
    elif how == "blurred":
        bgr = cv2.GaussianBlur(bgr, (0, 0), 4.0)
    elif how == "tilted":
        h, w = bgr.shape[:2]
        bgr = cv2.warpAffine(bgr, cv2.getRotationMatrix2D((w / 2, h / 2), 40, 1.0), (w, h),
                             borderMode=cv2.BORDER_REFLECT)
    return cv2.imencode(".png", bgr)[1].tobytes()


@pytest.mark.parametrize("how, remedy", [("small", "come closer"), ("dark", "find more light"),
                                          ("blurred", "hold still"), ("tilted", "hold the head upright")])
def test_what_can_i_do_names_what_the_live_photo_shows(engine, mismatched_pair_bytes, how: str,  # type: ignore[no-untyped-def]
                                                       remedy: str) -> None:
    reference, live = mismatched_pair_bytes
    result = engine.verify(reference, _degraded(live, how)).to_dict()
    if "quality" not in result["faces"][1]:
        pytest.skip("this build measures no photo quality")
    by_key = {f.key: f for f in build_facts(result)}
    assert not result["match"] and remedy in by_key["advice"].text, (how, by_key["advice"].text)
    untouched = {f.key: f for f in build_facts(engine.verify(reference, live).to_dict())}
    assert remedy not in untouched["advice"].text


def test_speller_index_finds_what_a_full_scan_finds() -> None:
    import random

    from edgefx.qa.text import Speller

    domain = {"threshold", "similarity", "confidence", "decision", "sharpness", "lighting", "forehead", "eyebrow",
              "match", "score", "greedy", "removal", "aggregation", "detector", "recognised", "rejected", "rejection"}
    speller = Speller({"the", "what", "is"}, domain)

    def full_scan(w: str) -> str:
        cap = 2 if len(w) >= 8 else 1
        dist = sorted((speller._dist(w, d, cap), d) for d in speller.domain)
        best = [d for k, d in dist if k == dist[0][0]]
        return best[0] if dist[0][0] <= cap and len(best) == 1 else w

    rng = random.Random(0)
    for word in sorted(domain):
        for _ in range(20):
            w = list(word)
            for _ in range(rng.randint(1, 2)):
                w.insert(rng.randrange(len(w) + 1), rng.choice("abcdefghijklmnopqrstuvwxyz"))
                del w[rng.randrange(len(w))]
            typo = "".join(w)
            if len(typo) >= 5 and typo.isalpha() and typo not in speller.vocab:
                assert speller.fix_word(typo) == full_scan(typo), typo
    assert speller("whats the treshold") == "whats the threshold"
