"""Answers as sentences a person reads on a kiosk, built from the value the reader extracted and its fact; every
number in them is copied from the facts, which copy it from the result."""

from __future__ import annotations

from collections.abc import Mapping

from edgefx.qa.facts import Fact


def _get(facts: Mapping[str, Fact], key: str) -> str | None:
    return facts[key].answer if key in facts else None


def _verdict(match: bool, facts: Mapping[str, Fact]) -> str:
    """What the decision says, for a pair, an identification (who) or a claimed identity."""
    who, claimed = _get(facts, "who"), _get(facts, "claimed")
    if claimed:
        return f"the photo is judged {'' if match else 'not '}to show the claimed person, {claimed}"
    if who:
        return f"the photo is judged to show {who}" if match else "the photo is judged to show nobody enrolled"
    return f"the photos are judged to show {'the same person' if match else 'two different people'}"


def _decision(value: str, facts: Mapping[str, Fact]) -> str:
    match = value == "a match"
    score, threshold, confidence = _get(facts, "score"), _get(facts, "threshold"), _get(facts, "confidence")
    head = f"{'Yes' if match else 'No'}: {_verdict(match, facts)}"
    if score is None or threshold is None:
        return head + "."
    side = "above" if match else "below"
    sure = f" ({confidence} confident)" if confidence else ""
    return f"{head}, because the score {score} is {side} the threshold {threshold}{sure}."


def _score(value: str, facts: Mapping[str, Fact]) -> str:
    threshold, decision = _get(facts, "threshold"), _get(facts, "decision")
    if threshold is None or decision is None:
        return f"The similarity score is {value}."
    return f"The similarity score is {value}; the threshold is {threshold}, so it is {decision}."


def _threshold(value: str, facts: Mapping[str, Fact]) -> str:
    score = _get(facts, "score")
    tail = f" This pair scored {score}." if score else ""
    return f"The decision threshold is {value}: a score at or above it counts as a match.{tail}"


def _margin(value: str, facts: Mapping[str, Fact]) -> str:
    score, threshold = _get(facts, "score"), _get(facts, "threshold")
    tail = f" ({score} against {threshold})" if score and threshold else ""
    return f"The score is {value} the threshold{tail}."


def _why(value: str, facts: Mapping[str, Fact]) -> str:
    match = _get(facts, "decision") == "a match"
    text = f"{'It is a match' if match else 'It is not a match'} because {value}"
    margin = _get(facts, "margin")
    text += f" ({margin})." if margin else "."
    raised = [f"the {facts[k].answer.removeprefix('the ')} in {label}" for k, label in
              (("top:a:single_removal", "photo A"), ("top:b:single_removal", "photo B")) if k in facts]
    if raised:
        text += f" Hiding {' and '.join(raised)} lowered the score the most: those regions carried the similarity."
    return text


def _confidence(value: str, facts: Mapping[str, Fact]) -> str:
    decision = _get(facts, "decision")
    what = f" that it is {decision}" if decision else ""
    return f"The system is {value} confident{what} (PIC confidence, from how often such scores come from the same " \
           f"person or from different people)."


COMPOSERS = {"decision": _decision, "score": _score, "threshold": _threshold, "margin": _margin, "why": _why,
             "confidence": _confidence}


def compose(chosen: list[tuple[Fact, str]], facts: Mapping[str, Fact]) -> str:
    """One kiosk sentence per chosen (fact, extracted value): a composed sentence for the decision facts, the fact's
    own sentence (which states the value) for the others."""
    parts = []
    for fact, value in chosen:
        family = fact.key.split(":")[0]
        composer = COMPOSERS.get(family)
        parts.append(composer(value, facts) if composer else fact.text)
    return " ".join(dict.fromkeys(parts))
