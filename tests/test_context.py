"""The context document states the result's facts, and only numbers that come from the result."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from edgefx.qa.context import build_context, build_facts
from export.qa_corpus import random_result

REAL_RESULTS = Path(__file__).parent / "data" / "qa_dev_results.json"


def _numbers(value: object) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return []


def _traceable(result: dict) -> set[str]:
    """Every number the context may print: result values and the two derived ones, in each printed format."""
    values = _numbers(result)
    values.append(abs(result["score"] - result["threshold"]))
    values += [100 * result["confidence"]]
    explanation = result.get("explanation") or {}
    if explanation.get("timings_ms"):
        values.append(sum(explanation["timings_ms"].values()))
    methods = explanation.get("methods") or []
    values += [len(methods), len(methods) - 1, 1.0]  # "k of N methods", "(1 is full agreement)"
    printed = set()
    for v in values:
        printed |= {f"{v:.0f}", f"{v:.1f}", f"{v:.2f}", f"{v:.3f}"}
    return printed


def _results() -> list[dict]:
    rng = random.Random(7)
    results = [random_result(rng) for _ in range(30)]
    if REAL_RESULTS.is_file():
        results += [entry["result"] for entry in json.loads(REAL_RESULTS.read_text()).values()]
    return results


@pytest.mark.parametrize("result", _results())
def test_every_number_comes_from_the_result(result: dict) -> None:
    printed = _traceable(result)
    for sentence in build_context(result):
        for number in re.findall(r"(?<![A-Za-z0-9.])-?\d+(?:\.\d+)?", sentence):
            assert number.lstrip("-") in printed or number in printed, (number, sentence)


def _result(match: bool, score: float, threshold: float) -> dict:
    result = random_result(random.Random(3))
    result.update(match=match, score=score, threshold=threshold, confidence=0.9871)
    return result


def test_decision_score_threshold_and_comparison() -> None:
    context = build_context(_result(False, 0.2134, 0.3051))
    assert "The decision is no match: the two photos are judged to show different people." in context
    assert "The similarity score between the two faces is 0.213." in context
    assert "The decision threshold is 0.305." in context
    assert "The score is 0.092 below the threshold." in context
    assert "It is not a match because the score 0.213 is below the threshold 0.305." in context
    assert "The PIC confidence of this decision is 98.7%." in context
    matched = build_context(_result(True, 0.6, 0.3))
    assert "It is a match because the score 0.600 is above the threshold 0.300." in matched


def test_top_second_least_regions_follow_the_table_ranks() -> None:
    result = _result(True, 0.6, 0.3)
    rows = [r for r in result["explanation"]["table"] if r["image"] == "b" and r["method"] == "greedy_removal"]
    rows.sort(key=lambda r: r["rank"])
    facts = {f.key: f for f in build_facts(result)}
    top = facts["top:b:greedy_removal"]
    assert top.answer == "the " + rows[0]["region"].replace("_", " ")
    assert f"{rows[0]['share']:.1f}%" in top.text and "second photo (B)" in top.text
    assert facts["second:b:greedy_removal"].answer == "the " + rows[1]["region"].replace("_", " ")
    assert facts["least:b:greedy_removal"].answer == "the " + rows[-1]["region"].replace("_", " ")


def test_sides_methods_faces_model_and_timings_are_described() -> None:
    result = _result(True, 0.6, 0.3)
    text = " ".join(build_context(result))
    assert "Left and right are the subject's own" in text
    for label in ("S-", "G-", "S+", "G+", "Avg"):
        assert f"({label})" in text
    face = result["faces"][0]
    assert f"The face found in the first photo (A) is {face['size_px']} pixels wide." in text
    assert f"The face detector confidence for the first photo (A) is {face['score']:.3f}." in text
    assert f"The models run with {result['model']['backend']}" in text
    assert f"The verification took {result['timings_ms']['total']:.1f} ms in total." in text


def test_without_explanation_there_are_no_region_facts() -> None:
    result = _result(True, 0.6, 0.3)
    del result["explanation"]
    keys = [f.key for f in build_facts(result)]
    assert "decision" in keys and not any(k.startswith(("top:", "share:", "method:")) for k in keys)


def test_every_answer_span_is_inside_its_sentence() -> None:
    for result in _results():
        for fact in build_facts(result):
            assert fact.answer and fact.answer in fact.text


def test_the_most_important_region_fact_follows_the_shipped_ranking() -> None:
    import numpy as np

    from edgefx.explain.regions import RANK_BY, REGIONS, explainability_table, region_labels

    labels = region_labels()
    sal = np.where(labels == REGIONS.index("forehead") + 1, 0.2, 0.0).astype(np.float32)
    sal[labels == REGIONS.index("left_eye") + 1] = 1.0  # more mass on the forehead, more per pixel on the eye
    table = explainability_table({"a": {"average": sal}})
    result = _result(True, 0.6, 0.3)
    result["explanation"] = {"methods": ["average"], "table": table, "rank_by": RANK_BY}
    facts = {f.key: f for f in build_facts(result)}
    by_figure = {fig: max((r for r in table), key=lambda r: r[fig]) for fig in ("share", "density")}
    assert by_figure["share"]["region"] == "forehead" and by_figure["density"]["region"] == "left_eye"
    shipped = by_figure[RANK_BY]
    assert facts["top:a:average"].answer == "the " + shipped["region"].replace("_", " ")
    assert f"with {shipped[RANK_BY]:.1f}%" in facts["top:a:average"].text
    # a result stored before the ranking changed (no `rank_by`) keeps its mass shares
    result["explanation"] = {"methods": ["average"], "table": explainability_table({"a": {"average": sal}},
                                                                                  rank_by="share")}
    assert {f.key: f for f in build_facts(result)}["top:a:average"].answer == "the forehead"


def test_an_unqualified_rank_question_gets_the_measured_region_ranking_when_the_result_has_it() -> None:
    import numpy as np

    from edgefx.explain.regions import REGION_METHOD, REGIONS, explainability_table, region_labels
    from edgefx.qa.slots import keys_for, preferred_keys

    labels = region_labels()
    sal = np.where(labels == REGIONS.index("left_eye") + 1, 1.0, 0.0).astype(np.float32)
    drops = np.linspace(0.01, 0.10, len(REGIONS))[::-1].copy()  # forehead's removal costs the most ...
    drops[REGIONS.index("mouth")] = 0.2  # ... except the mouth's
    result = _result(True, 0.6, 0.3)
    result["explanation"] = {"methods": ["average"], "table": explainability_table({"a": {"average": sal}},
                                                                                  region_drops={"a": drops}),
                             "rank_by": "density", "region_method": REGION_METHOD}
    facts = {f.key: f for f in build_facts(result)}
    assert facts["top:a:region_removal"].answer == "the mouth" and facts["top:a:average"].answer == "the left eye"
    assert facts["second:a:region_removal"].answer == "the forehead"
    assert "by region removal (R-)" in facts["top:a:region_removal"].text
    q = "what was the most important region in photo a"
    keys = keys_for("top", q)
    assert keys == ["top:a:average"] and preferred_keys(keys, q) == {"top:a:average": "top:a:region_removal"}
    named = "what was the most important region in photo a by the average"
    assert preferred_keys(keys_for("top", named), named) == {}  # a method the user names is the one answered


def test_the_answer_to_an_unqualified_rank_question_follows_the_measured_ranking() -> None:
    import numpy as np

    from edgefx.explain.regions import REGION_METHOD, REGIONS, explainability_table, region_labels
    from edgefx.qa.answerer import QuestionAnswerer
    from edgefx.qa.intents import Resolution
    from edgefx.qa.slots import keys_for, preferred_keys

    labels = region_labels()
    sal = np.where(labels == REGIONS.index("left_eye") + 1, 1.0, 0.0).astype(np.float32)
    drops = np.full(len(REGIONS), 0.01)
    drops[REGIONS.index("nose")] = 0.2
    maps = {"a": {"average": sal}}
    qa = object.__new__(QuestionAnswerer)  # the resolver and reader stubbed: this checks which fact is answered
    qa.extract = lambda question, fact: (fact.answer, True)  # type: ignore[method-assign]
    for question, with_direct, expected in (
            ("what was the most important region in photo a", True, ("top:a:region_removal", "the nose")),
            ("what was the most important region in photo a", False, ("top:a:average", "the left eye")),
            ("what was the most important region in photo a by the average", True, ("top:a:average", "the left eye"))):
        keys = keys_for("top", question)
        qa.resolve = lambda q, keys=keys, question=question: Resolution(  # type: ignore[method-assign]
            keys, 0.99, "top", None, preferred_keys(keys, question))
        result = _result(True, 0.6, 0.3)
        result["explanation"] = {"methods": ["average"], "rank_by": "share", "table": explainability_table(
            maps, region_drops={"a": drops} if with_direct else None), "region_method": REGION_METHOD}
        answer = qa.answer(build_facts(result), question)
        assert (answer.fact, answer.value) == expected, question


def test_a_share_question_gets_only_the_named_regions_share_of_the_average_map() -> None:
    from edgefx.qa.slots import keys_for

    assert keys_for("share", "what share did the nose get in photo a") == ["share:a:nose"]
    assert keys_for("share", "how much did the nose count in the average map") == ["share:b:nose", "share:a:nose"]
    # a part that is no region, or another method's share, is not in the result: never some other region's share
    assert keys_for("share", "what share did my ears get") == []
    assert keys_for("share", "how much did the chin weigh in the greedy removal map") == []
    assert keys_for("share", "how much did the nose count by s+") == []


def test_a_share_the_result_lacks_is_declined_without_asking_for_the_explanation_it_has() -> None:
    import numpy as np

    from edgefx.explain.regions import REGIONS, explainability_table, region_labels
    from edgefx.qa.answerer import NOT_IN_RESULT, QuestionAnswerer
    from edgefx.qa.intents import Resolution
    from edgefx.qa.slots import keys_for

    question = "what share did my hair get"
    qa = object.__new__(QuestionAnswerer)  # the resolver stubbed: this checks what the answer says
    qa.resolve = lambda q: Resolution(keys_for("share", q), 0.99, "share")  # type: ignore[method-assign]
    qa.suggestions = lambda resolution, n=3: []  # type: ignore[method-assign]
    sal = np.where(region_labels() == REGIONS.index("nose") + 1, 1.0, 0.0).astype(np.float32)
    explained = _result(True, 0.6, 0.3)
    explained["explanation"] = {"methods": ["average"], "rank_by": "share",
                                "table": explainability_table({"a": {"average": sal}})}
    answer = qa.answer(build_facts(explained), question)
    assert not answer.answered and answer.answer.startswith(NOT_IN_RESULT) and "explanation" not in answer.answer
    unexplained = _result(True, 0.6, 0.3)
    unexplained.pop("explanation", None)
    plain = qa.answer(build_facts(unexplained), question)
    assert not plain.answered and "ask for an explanation" in plain.answer
