"""Build the QA dev contexts: verify + explain real LFW DevTest pairs and store the result dicts (numbers only)."""

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


def build_results() -> dict[str, Any]:
    from edgefx.runtime.config import Settings
    from edgefx.engine import Engine

    root = lfw_dir()
    pairs = read_pairs(root / "pairsDevTest.txt")
    engine = Engine(Settings.from_env(threads=2), load_qa=False)
    images = root / "lfw-deepfunneled"
    stored = {}
    for n, index in enumerate(MATCHED + MISMATCHED, start=1):
        pair = pairs[index]
        result = engine.verify((images / pair.path_a).read_bytes(), (images / pair.path_b).read_bytes(), explain=True)
        stored[f"c{n:02d}"] = {"pair": [pair.path_a, pair.path_b], "genuine": pair.genuine,
                               "devtest_index": index, "result": strip(result.to_dict())}
        log.info("c%02d %s %s match=%s score=%.3f", n, pair.path_a, pair.path_b, result.match, result.score)
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.reuse:
        stored = json.loads(RESULTS.read_text())
    else:
        stored = build_results()
        RESULTS.write_text(json.dumps(stored, indent=1) + "\n")
    print(f"{len(stored)} contexts, {fill_answers(stored)} questions")


if __name__ == "__main__":
    main()
