"""Build the QA contexts: verify + explain real LFW DevTest pairs and store the result dicts (numbers only).

`--set dev` (the tuning set), `--set dev2` (the second tuning set's answers, same contexts) and
`--set unseen` (the held-out set's six contexts u01-u06: three pairs judged a match,
then three judged no match, on DevTest pairs the dev set does not use)."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

from edgefx.qa.context import build_facts
from edgefx.evaluation.lfw import read_pairs

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "tests" / "data" / "qa_dev_results.json"
QUESTIONS = ROOT / "tests" / "data" / "qa_dev.jsonl"
DEV2_QUESTIONS = ROOT / "tests" / "data" / "qa_dev2.jsonl"  # the second tuning set, same contexts
UNSEEN_RESULTS = ROOT / "tests" / "data" / "qa_unseen_results.json"
# Other strides of DevTest for the unseen set; the first three of each list the engine decides as labelled are used.
UNSEEN_MATCHED = [41, 124, 207, 290, 373, 456]
UNSEEN_MISMATCHED = [548, 631, 714, 797, 880, 963]
# DevTest has 500 matched pairs then 500 mismatched; a fixed stride picks 6 of each without looking at scores.
MATCHED = [0, 83, 166, 249, 332, 415]
MISMATCHED = [507, 590, 673, 756, 839, 922]


def lfw_dir() -> Path:
    return Path(os.environ.get("EDGEFX_LFW", ROOT.parent / "shared" / "lfw"))


def strip(result: dict[str, Any]) -> dict[str, Any]:
    """Keep the numbers; drop file paths of heatmaps (they point into a temp folder)."""
    out = dict(result)
    if "explanation" in out:
        explanation = dict(out["explanation"])
        explanation["heatmaps"] = {}
        explanation["summary"] = ""
        out["explanation"] = explanation
    return out


def build_results(unseen: bool = False) -> dict[str, Any]:
    from edgefx.runtime.config import Settings
    from edgefx.engine import Engine

    root = lfw_dir()
    pairs = read_pairs(root / "pairsDevTest.txt")
    engine = Engine(Settings.from_env(threads=2), load_qa=False)
    images = root / "lfw-deepfunneled"
    stored: dict[str, Any] = {}
    plan = [(UNSEEN_MATCHED, True), (UNSEEN_MISMATCHED, False)] if unseen else [(MATCHED + MISMATCHED, None)]
    for indices, wanted in plan:
        taken = 0
        for index in indices:
            pair = pairs[index]
            result = engine.verify((images / pair.path_a).read_bytes(), (images / pair.path_b).read_bytes(),
                                   explain=True)
            if wanted is not None and (result.match != wanted or taken == 3):
                continue  # the unseen contexts u01-u03 are matches and u04-u06 rejections, as its questions assume
            taken += 1
            stored[f"{'u' if unseen else 'c'}{len(stored) + 1:02d}"] = {
                "pair": [pair.path_a, pair.path_b], "genuine": pair.genuine, "devtest_index": index,
                "result": strip(result.to_dict())}
            log.info("%s %s match=%s score=%.3f", pair.path_a, pair.path_b, result.match, result.score)
    return stored


def fill_answers(stored: dict[str, Any], questions: Path = QUESTIONS) -> int:
    """Write each question's gold answers (the spans of its gold facts in its context) into the jsonl."""
    facts = {cid: {f.key: f.answer for f in build_facts(entry["result"])} for cid, entry in stored.items()}
    rows = [json.loads(line) for line in questions.read_text().splitlines() if line.strip()]
    for row in rows:
        row["answers"] = [facts[row["context"]][key] for key in row["facts"] or []]
    questions.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m export.qa_devset", description=__doc__)
    parser.add_argument("--reuse", action="store_true", help="only refill gold answers from the stored results")
    parser.add_argument("--set", choices=["dev", "dev2", "unseen"], default="dev")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.set == "unseen":
        stored = build_results(unseen=True)
        UNSEEN_RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
        print(f"{len(stored)} contexts")
        return
    if args.reuse:
        stored = json.loads(RESULTS.read_text())
    else:
        stored = build_results()
        RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
    questions = DEV2_QUESTIONS if args.set == "dev2" else QUESTIONS
    print(f"{len(stored)} contexts, {fill_answers(stored, questions)} questions")


if __name__ == "__main__":
    main()
