"""QA evaluation on a question set (`edgefx eval qa --set dev|dev2|unseen`) and the QA latency (`edgefx bench qa`).

A question counts as answered right when the answer comes from one of its acceptable facts; an unanswerable one
counts as refused when the answerer refuses; anything else answered is a confident wrong answer."""

from __future__ import annotations

import hashlib
import json
import os
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefx.qa.context import build_facts
from edgefx.qa.facts import Fact

DATA_DIR = Path(__file__).resolve().parents[2] / "tests" / "data"
SETS = {"dev": ("qa_dev.jsonl", "qa_dev_results.json"), "dev2": ("qa_dev2.jsonl", "qa_dev_results.json"),
        "unseen": ("qa_unseen.jsonl", "qa_unseen_results.json"),
        "fresh": ("qa_fresh.jsonl", "qa_unseen_results.json")}
DEV_QUESTIONS, DEV_RESULTS = (DATA_DIR / f for f in SETS["dev"])


@dataclass(frozen=True)
class Question:
    id: str
    context: str
    question: str
    facts: tuple[str, ...]  # acceptable fact keys; empty: unanswerable

    @property
    def answerable(self) -> bool:
        return bool(self.facts)


def set_paths(name: str) -> tuple[Path, Path]:
    questions, results = SETS[name]
    return DATA_DIR / questions, DATA_DIR / results


def load_set(questions: Path, results: Path) -> tuple[list[Question], dict[str, list[Fact]]]:
    """The questions and, per context id, the facts of its stored real-pair result."""
    stored = json.loads(results.read_text())
    facts = {cid: build_facts(entry["result"]) for cid, entry in stored.items()}
    rows = [json.loads(line) for line in questions.read_text().splitlines() if line.strip()]
    return [Question(r["id"], r["context"], r["question"], tuple(r["facts"] or ())) for r in rows], facts


def judge(row: Question, answer: Any) -> str:
    """'right', 'refused' or 'wrong' for one answer."""
    if not answer.answered:
        return "refused"
    return "right" if row.answerable and answer.fact in row.facts else "wrong"


def score(rows: list[Question], answers: list[Any]) -> dict[str, Any]:
    """The three target figures, with counts; 'wrong' is per answerable question, as the targets are stated."""
    verdicts = [judge(r, a) for r, a in zip(rows, answers)]
    answerable = [v for r, v in zip(rows, verdicts) if r.answerable]
    unanswerable = [v for r, v in zip(rows, verdicts) if not r.answerable]
    wrong = verdicts.count("wrong")
    return {
        "questions": len(rows), "answerable": len(answerable), "unanswerable": len(unanswerable),
        "answerable_right": round(answerable.count("right") / max(len(answerable), 1), 4),
        "unanswerable_refused": round(unanswerable.count("refused") / max(len(unanswerable), 1), 4),
        "confident_wrong": wrong, "confident_wrong_per_answerable": round(wrong / max(len(answerable), 1), 4),
        "confident_wrong_per_question": round(wrong / max(len(rows), 1), 4),
    }


def by_family(rows: list[Question], answers: list[Any]) -> dict[str, dict[str, int]]:
    """Verdict counts per asked fact family (unanswerable: 'out_of_scope')."""
    out: dict[str, Counter[str]] = {}
    for row, answer in zip(rows, answers):
        family = row.facts[0].split(":")[0] if row.facts else "out_of_scope"
        out.setdefault(family, Counter())[judge(row, answer)] += 1
    return {k: dict(v) for k, v in sorted(out.items())}


def in_banks(rows: list[Question]) -> list[bool]:
    """Per question: whether a bank example has its very wording (case and punctuation aside). Short kiosk questions
    converge: writers who never saw a question set still wrote 4 % of their examples word for word as held-out ones."""
    from edgefx.qa.intents import banks

    def plain(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9' ]", " ", text.lower()).split())

    examples = {plain(t) for texts in banks().values() for t in texts}
    return [plain(r.question) in examples for r in rows]


def _agreement(answers: list[Any]) -> float | None:
    """Share of answered questions where the reader's span agreed with the chosen fact's span."""
    sources = [a.value_source for a in answers if a.answered]
    return round(sources.count("reader") / len(sources), 4) if sources else None


def _novel(rows: list[Question], answers: list[Any]) -> dict[str, Any]:
    """The target figures on the questions whose wording no bank example has: generalisation, not recall."""
    kept = [(r, a) for r, a, seen in zip(rows, answers, in_banks(rows)) if not seen]
    return score([r for r, _ in kept], [a for _, a in kept])


def evaluate(qa: Any, questions: Path, results: Path, show_mistakes: bool = False) -> dict[str, Any]:
    rows, facts = load_set(questions, results)
    answers, times = [], []
    for row in rows:
        t0 = time.perf_counter()
        answers.append(qa.answer(facts[row.context], row.question))
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    report: dict[str, Any] = {
        "set": questions.name, "sha256": hashlib.sha256(questions.read_bytes()).hexdigest(),
        "precision": qa.precision, "threshold": qa.threshold, "contexts": len(facts),
        **score(rows, answers), "by_family": by_family(rows, answers),
        "novel_wording": _novel(rows, answers),
        "reader_agrees_with_fact": _agreement(answers),
        "latency_ms": {"median": round(statistics.median(times), 2), "p90": round(times[int(0.9 * len(times))], 2)},
    }
    mistakes = [{"id": r.id, "question": r.question, "facts": list(r.facts), "answer": a.answer, "fact": a.fact,
                 "intent": a.intent, "confidence": a.confidence}
                for r, a in zip(rows, answers) if judge(r, a) == "wrong" or (r.answerable and not a.answered)]
    report["mistakes"] = mistakes if show_mistakes else len(mistakes)
    return report


def bench(precisions: list[str], backends: list[str], threads: int, repeats: int,
          models_dir: Path | None = None) -> dict[str, Any]:
    """Per-question latency (intent, slots, reading, the sentence) for each precision x backend, and the first
    question asked of each new result."""
    from edgefx.qa.answerer import QuestionAnswerer

    rows, facts = load_set(DEV_QUESTIONS, DEV_RESULTS)
    results = []
    for precision in precisions:
        for backend in backends:
            qa = QuestionAnswerer(precision=precision, backend=backend, threads=threads, models_dir=models_dir)
            first = []
            for context in facts.values():
                t0 = time.perf_counter()
                qa.answer(context, "Is it a match?")
                first.append((time.perf_counter() - t0) * 1e3)
            warm = []
            for _ in range(repeats):
                for row in rows:
                    t0 = time.perf_counter()
                    qa.answer(facts[row.context], row.question)
                    warm.append((time.perf_counter() - t0) * 1e3)
            warm.sort()
            results.append({
                "precision": precision, "backend": backend, "threads": threads, "questions": len(warm),
                "median_ms": round(statistics.median(warm), 2), "p90_ms": round(warm[int(0.9 * len(warm))], 2),
                "first_question_after_load_ms": round(first[0], 2),
                "first_question_on_new_result_median_ms": round(statistics.median(first[1:]), 2),
            })
    return {"benchmark": "qa", "note": "per question: question embedding, intent, slots, span reading of the chosen "
            "fact sentence(s), the answer sentence; nothing is cached per result",
            "load_average": [round(x, 2) for x in os.getloadavg()], "results": results}
