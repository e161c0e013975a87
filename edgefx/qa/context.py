"""Turn a verification or identification result (and its explanation) into short factual sentences for QA."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgefx.explain.regions import REGION_METHOD
from edgefx.qa.advice import quality_facts
from edgefx.qa.facts import Fact, fact, photo

METHOD_NAMES = {
    "single_removal": "single removal",
    "greedy_removal": "greedy removal",
    "single_aggregation": "single aggregation",
    "greedy_aggregation": "greedy aggregation",
    "average": "the average",
    REGION_METHOD: "region removal",
}
LABELS = {"single_removal": "S-", "greedy_removal": "G-", "single_aggregation": "S+", "greedy_aggregation": "G+",
          "average": "Avg", REGION_METHOD: "R-"}
METHOD_DESCRIPTIONS = {
    "single_removal": "Single removal (S-) hides one facial region at a time and measures how much the "
    "similarity score drops.",
    "greedy_removal": "Greedy removal (G-) hides regions one after another, each time the region whose removal "
    "lowers the similarity score the most.",
    "single_aggregation": "Single aggregation (S+) shows only one facial region at a time and measures how much "
    "similarity score it alone gives.",
    "greedy_aggregation": "Greedy aggregation (G+) reveals regions one after another, each time the region that "
    "raises the similarity score the most.",
    "average": "The average method (Avg) combines the four other methods by averaging their importance maps.",
    REGION_METHOD: "Region removal (R-) hides each of the ten facial regions itself, one at a time, and measures how "
    "much the similarity score drops.",
}
# Display names. ArcFace keeps its id "arcface": the reader's training corpus states it that way, and another name
# changes the corpus (recipe hash 13faaba0f9d2e7b7 -> 375ad22800702b7c, a retrain); fusion is not in the corpus.
RECOGNIZER_NAMES = {"sface": "SFace", "fusion": "SFace + ArcFace fusion"}
TIMING_NAMES = {
    "decode": "Decoding the images",
    "detect": "Face detection",
    "align": "Face alignment",
    "embed": "Computing the face embeddings",
    "decide": "Comparing the embeddings",
}


def region_name(region: str) -> str:
    return str(region).replace("_", " ")


def _pct(value: float) -> str:
    return f"{float(value):.1f}%"


def _ms(value: float) -> str:
    return f"{float(value):.1f} ms"


def _num(value: float) -> str:
    return f"{float(value):.3f}"


def _count(n: int, one: str, many: str) -> str:
    words = {0: "no", 1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
    return f"{words.get(n, str(n))} {one if n == 1 else many}"


def _decision_facts(result: Mapping[str, Any]) -> list[Fact]:
    facts: list[Fact] = []
    match = result.get("match")
    score, threshold = result.get("score"), result.get("threshold")
    if match is not None:
        if match:
            verdict = "a match"
            text = f"The decision is {verdict}: the two photos are judged to show the same person."
        else:
            verdict = "no match"
            text = f"The decision is {verdict}: the two photos are judged to show different people."
        facts.append(fact("decision", text, verdict))
    if score is not None:
        facts.append(fact("score", f"The similarity score between the two faces is {_num(score)}.", _num(score)))
    if threshold is not None:
        facts.append(fact("threshold", f"The decision threshold is {_num(threshold)}.", _num(threshold)))
    if score is not None and threshold is not None:
        above = float(score) >= float(threshold)
        side = "above" if above else "below"
        gap = abs(float(score) - float(threshold))
        facts.append(fact("margin", f"The score is {_num(gap)} {side} the threshold.", f"{_num(gap)} {side}"))
        reason = f"the score {_num(score)} is {side} the threshold {_num(threshold)}"
        if above:
            text = f"It is a match because {reason}."
        else:
            text = f"It is not a match because {reason}."
        facts.append(fact("why", text, reason))
    confidence = result.get("confidence")
    if confidence is not None:
        pct = _pct(100.0 * float(confidence))
        facts.append(fact("confidence", f"The PIC confidence of this decision is {pct}.", pct))
        meaning = f"a {pct} probability that this decision is correct"
        facts.append(fact(
            "confidence_meaning",
            f"A PIC confidence of {pct} means the calibrated model gives {meaning}, judged from how often "
            "scores like this one come from the same person or from different people.",
            meaning,
        ))
    return facts


def _face_facts(result: Mapping[str, Any]) -> list[Fact]:
    facts: list[Fact] = []
    for face in result.get("faces") or []:
        image = str(face.get("image", "?"))
        where = photo(image)
        if face.get("size_px") is not None:
            size = f"{int(round(float(face['size_px'])))} pixels"
            facts.append(fact(f"face_size:{image}", f"The face found in {where} is {size} wide.", size))
        if face.get("score") is not None:
            det = _num(face["score"])
            facts.append(fact(
                f"face_score:{image}", f"The face detector confidence for {where} is {det}.", det))
        if face.get("other_faces") is not None:
            others = int(face["other_faces"])
            count = _count(others, "other face", "other faces")
            facts.append(fact(
                f"other_faces:{image}", f"Besides the verified face, {where} contains {count}.", count))
    return facts


def _model_facts(result: Mapping[str, Any]) -> list[Fact]:
    model = result.get("model") or {}
    facts: list[Fact] = []
    recognizer, detector = model.get("recognizer"), model.get("detector")
    if recognizer:
        name = RECOGNIZER_NAMES.get(str(recognizer).lower(), str(recognizer))
        facts.append(fact("recognizer", f"The face recognition model is {name}.", name))
    if detector:
        name = str(detector).upper() if str(detector).lower() == "mtcnn" else str(detector)
        facts.append(fact("detector", f"The face detector is {name}.", name))
    backend, precision, device = model.get("backend"), model.get("precision"), model.get("device")
    if backend:
        run = f"{backend}"
        where = f" on the {device} device" if device else ""
        prec = f" in {precision} precision" if precision else ""
        facts.append(fact("backend", f"The models run with {run}{where}{prec}.", run))
    return facts


def _timing_facts(result: Mapping[str, Any]) -> list[Fact]:
    timings = result.get("timings_ms") or {}
    facts: list[Fact] = []
    if timings.get("total") is not None:
        total = _ms(timings["total"])
        facts.append(fact("time:total", f"The verification took {total} in total.", total))
    for step, label in TIMING_NAMES.items():
        if timings.get(step) is not None:
            took = _ms(timings[step])
            facts.append(fact(f"time:{step}", f"{label} took {took}.", took))
    return facts


def _rank_facts(where: str, image: str, method: str, rows: list[Mapping[str, Any]], figure: str) -> list[Fact]:
    """The most, second and least important regions of one method in one photo (`rows` sorted by rank)."""
    facts: list[Fact] = []
    by = f"by {METHOD_NAMES[method]} ({LABELS[method]})"
    first = rows[0]
    region = f"the {region_name(first['region'])}"
    facts.append(fact(
        f"top:{image}:{method}",
        f"In {where}, the most important region {by} is {region}, with {_pct(first[figure])}.",
        region,
    ))
    if len(rows) > 1:
        second = rows[1]
        region = f"the {region_name(second['region'])}"
        facts.append(fact(
            f"second:{image}:{method}",
            f"In {where}, the second most important region {by} is {region}, with "
            f"{_pct(second[figure])}.",
            region,
        ))
        last = rows[-1]
        region = f"the {region_name(last['region'])}"
        facts.append(fact(
            f"least:{image}:{method}",
            f"In {where}, the least important region {by} is {region}, with {_pct(last[figure])}.",
            region,
        ))
    return facts


def _explanation_facts(explanation: Mapping[str, Any]) -> list[Fact]:
    facts: list[Fact] = [fact(
        "sides",
        "Left and right are the subject's own: the subject's left eye appears on the right side of the photo.",
        "the subject's own",
    )]
    by_key: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in explanation.get("table") or []:
        by_key.setdefault((str(row["image"]), str(row["method"])), []).append(row)
    methods = [m for m in explanation.get("methods") or METHOD_NAMES if m in METHOD_NAMES and m != REGION_METHOD]
    # the figure the maps' rows rank by (`rank_by`; results stored before it existed ranked by share); the
    # region-removal rows give their share of the score drop
    map_figure = str(explanation.get("rank_by") or "share")
    # the regions removed themselves (R-, the ranking that measured most faithful: README "Region-level
    # faithfulness"), when the result has them
    ranked = methods + [REGION_METHOD] * any(method == REGION_METHOD for _, method in by_key)
    images = sorted({image for image, _ in by_key})
    for image in images:
        where = photo(image)
        for method in ranked:
            rows = sorted(by_key.get((image, method), []), key=lambda r: int(r["rank"]))
            if not rows:
                continue
            figure = "share" if method == REGION_METHOD else map_figure
            facts += _rank_facts(where, image, method, rows, figure)
            if method == "average":
                for row in rows:
                    share = _pct(row[figure])
                    facts.append(fact(
                        f"share:{image}:{row['region']}",
                        f"In {where}, the {region_name(row['region'])} has an average importance of {share}.",
                        share,
                    ))
    n_methods = sum(1 for m in methods if m != "average")
    for image, agreement in sorted((explanation.get("agreement") or {}).items()):
        where = photo(image)
        if agreement.get("top_region") is not None and agreement.get("top_region_votes") is not None:
            votes = int(agreement["top_region_votes"])
            total = len(methods) if votes > n_methods else n_methods
            count = f"{votes} of {total} methods"
            facts.append(fact(
                f"agreement_top:{image}",
                f"In {where}, {count} agree that the {region_name(agreement['top_region'])} is the most "
                "important region.",
                count,
            ))
        if agreement.get("kendall_tau") is not None:
            tau = f"{float(agreement['kendall_tau']):.2f}"
            facts.append(fact(
                f"agreement_tau:{image}",
                f"In {where}, the region rankings of the methods agree with a Kendall tau of {tau} "
                "(1 is full agreement).",
                tau,
            ))
    for method in ranked:
        text = METHOD_DESCRIPTIONS[method]
        facts.append(fact(f"method:{method}", text, text.split(") ", 1)[1].rstrip(".")))
    timings = explanation.get("timings_ms") or {}
    if timings:
        total = _ms(sum(float(v) for v in timings.values()))
        facts.append(fact("time:explain", f"Computing the explanation maps took {total}.", total))
    return facts


def _person(name: Any, subject_id: Any) -> str:
    """'Alice Liddell (id alice)'; the id alone when there is no other name."""
    return f"{name} (id {subject_id})" if name and str(name) != str(subject_id) else f"id {subject_id}"


def _claimed(result: Mapping[str, Any]) -> str:
    """The subject a verify-id result was checked against, named as the result names it."""
    subject = result.get("subject")
    if isinstance(subject, Mapping):
        return _person(subject.get("name"), subject.get("id"))
    return _person(result.get("name") or result.get("subject_name"), subject)


def _identification_facts(result: Mapping[str, Any]) -> list[Fact]:
    """1:N identification (the result lists its candidates, best first): who, the runner-up and the lead over it.
    The decision and score sentences say who was compared instead of "the two photos"."""
    candidates = [c for c in result.get("candidates") or [] if c.get("score") is not None]
    if not candidates:
        return [fact("decision", "The decision is no match: nobody is enrolled to compare the photo with.", "no match"),
                fact("who", "The person in the photo is not identified: nobody is enrolled.", "nobody is enrolled")]
    best, threshold = candidates[0], result.get("threshold")
    who = _person(best.get("name"), best.get("id"))
    if result.get("match"):
        decision = fact("decision", f"The decision is a match: the photo is judged to show {who}, an enrolled person.",
                        "a match")
        facts = [fact("who", f"The person in the photo is identified as {who}, the best-matching enrolled person.",
                      who)]
    else:
        decision = fact("decision", "The decision is no match: the photo is judged to show nobody enrolled.",
                        "no match")
        below = f", below the threshold {_num(threshold)}" if threshold is not None else ""
        facts = [fact("who", "The person in the photo is not identified as anyone enrolled: the closest enrolled "
                             f"person, {who}, scored {_num(best['score'])}{below}.",
                      "not identified as anyone enrolled")]
    top = _num(result["score"] if result.get("score") is not None else best["score"])
    score = fact("score", f"The similarity score between the photo and the best-matching enrolled person, {who}, is "
                          f"{top}.", top)
    if len(candidates) < 2:
        facts.append(fact("runner_up", f"There is no runner-up: {who} is the only enrolled person compared.",
                          "no runner-up"))
    else:
        second = candidates[1]
        runner_up = _person(second.get("name"), second.get("id"))
        lead = _num(float(best["score"]) - float(second["score"]))
        facts.append(fact("runner_up", f"The runner-up is {runner_up}, with a score of {_num(second['score'])}.",
                          runner_up))
        facts.append(fact("lead", f"The best-matching enrolled person, {who}, scored {lead} more than the runner-up, "
                                  f"{runner_up}: {_num(best['score'])} against {_num(second['score'])}.", lead))
    replaced = {"decision": decision, "score": score}
    return [replaced.get(f.key, f) for f in _decision_facts(result)] + facts


def _verify_id_facts(result: Mapping[str, Any]) -> list[Fact]:
    """1:1 against a claimed identity: the decision and score sentences name the claimed subject."""
    claimed = _claimed(result)
    replaced: dict[str, Fact] = {}
    if result.get("match") is not None:
        if result["match"]:
            text, verdict = (f"The decision is a match: the photo is judged to show the claimed person, {claimed}.",
                             "a match")
        else:
            text, verdict = (f"The decision is no match: the photo is judged not to show the claimed person, "
                             f"{claimed}.", "no match")
        replaced["decision"] = fact("decision", text, verdict)
    if result.get("score") is not None:
        score = _num(result["score"])
        replaced["score"] = fact("score", f"The similarity score between the photo and the enrolled photos of "
                                          f"{claimed} is {score}.", score)
    shows = "shows" if result.get("match") else "does not show"
    claimed_fact = fact("claimed", f"The photo was checked against the claimed identity {claimed}; it {shows} that "
                                   "person.", claimed)
    return [replaced.get(f.key, f) for f in _decision_facts(result)] + [claimed_fact]


def _outcome_facts(result: Mapping[str, Any]) -> list[Fact]:
    """The decision facts, as a pair verification states them or, for identification results, naming who."""
    if "candidates" in result:
        return _identification_facts(result)
    if result.get("subject") is not None:
        return _verify_id_facts(result)
    return _decision_facts(result)


def build_facts(result: Mapping[str, Any]) -> list[Fact]:
    """Every fact stated by the result, each with the span that answers it; numbers only come from `result`."""
    facts = (_outcome_facts(result) + _face_facts(result) + quality_facts(result) + _model_facts(result)
             + _timing_facts(result))
    explanation = result.get("explanation")
    if explanation:
        facts += _explanation_facts(explanation)
    return facts


def build_context(result: Mapping[str, Any]) -> list[str]:
    """The context document: one short factual sentence per list item."""
    return [fact.text for fact in build_facts(result)]
