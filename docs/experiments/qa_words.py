"""Lab (issue 13): the intent regression with the question's words, its threshold, and two builds' agreement.

`cv`: pooled 5-fold cross-validation of the shipped design (the export's folds, L2, noisy copies and word features)
on the banks, with and without the former nearest-example second opinion, at every threshold: right, refused and
wrong per answerable question. Never reads a question set.
`agree A B`: the per-question answers of two models folders (e.g. one refitted with one BLAS thread into another
`EDGEFX_MODELS`) on a question set: how many give the same fact (or refusal) and the same sentence.

Usage: .venv/bin/python docs/experiments/qa_words.py cv
       .venv/bin/python docs/experiments/qa_words.py agree models /tmp/models_t1 [--set unseen]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

KNN, KNN_MIN, KNN_MARGIN = 3, 0.60, 0.08  # the second opinion's settings as last fitted (sixth banks, int8)


def cv() -> None:
    import scipy.sparse as sp

    from edgefx.qa.intents import OUT_OF_SCOPE
    from edgefx.qa.lexical import LexicalFeatures, vocabulary
    from export import intents as fm

    bank = fm.bank_texts()
    texts, noisy, source, classes, y = bank
    X, _, _, XA, _ = fm.bank_vectors(fm.CHOSEN_ON, 2, bank)
    lexical = [(LexicalFeatures(vocabulary(texts, view=v), v), w)
               for v, w in (("words", fm.LEXICAL_WEIGHT), ("chars", fm.CHAR_WEIGHT))]
    F, FA = fm.design(X, texts, lexical), fm.design(XA, noisy, lexical)
    C, oos = len(classes), classes.index(OUT_OF_SCOPE)
    folds = np.random.default_rng(0).permutation(len(y)) % fm.FOLDS
    P, K = np.zeros((len(y), C)), np.zeros((len(y), C))
    for k in range(fm.FOLDS):
        W, b = fm.fit(sp.vstack([F[folds != k], FA[folds[source] != k]]).tocsr(),
                      np.concatenate([y[folds != k], y[source][folds[source] != k]]), C, fm.L2[0])
        P[folds == k] = fm.probabilities(F[folds == k], W, b)
        S = X[folds == k] @ X[folds != k].T
        K[folds == k] = np.stack([np.sort(S[:, y[folds != k] == c], axis=1)[:, -KNN:].mean(1) for c in range(C)], 1)
    inside = np.delete(np.arange(C), oos)
    kbest = inside[np.argmax(K[:, inside], axis=1)]
    ktop = K[np.arange(len(K)), kbest]
    knn = np.where((ktop < KNN_MIN) | (ktop - K[:, oos] < KNN_MARGIN), oos, kbest)
    pred, top, answerable = P.argmax(1), P.max(1), y != oos
    for t in np.round(np.arange(0.60, 0.95, 0.02), 2):
        for name, answered in (("regression", (pred != oos) & (top >= t)),
                               ("+ second opinion", (pred != oos) & ((top >= t) | (knn == pred)))):
            right = np.mean(answered[answerable] & (pred[answerable] == y[answerable]))
            wrong = np.sum(answered[answerable] & (pred[answerable] != y[answerable])) + np.sum(answered[~answerable])
            print(f"t {t:.2f} {name:16s} right {right:.3f} refused {np.mean(~answered[~answerable]):.3f} "
                  f"wrong per answerable {wrong / answerable.sum():.4f}")


def answers(models: str, name: str) -> list[tuple[str | None, bool, str]]:
    """Run in a child process: the models folder is read when edgefx is imported."""
    code = ("import json,sys\nfrom edgefx.evaluation.qa_eval import load_set, set_paths\n"
            "from edgefx.qa.answerer import QuestionAnswerer\n"
            "qa = QuestionAnswerer(precision='int8', backend='onnxruntime', threads=2)\n"
            f"rows, facts = load_set(*set_paths({name!r}))\n"
            "for r in rows:\n a = qa.answer(facts[r.context], r.question)\n"
            " print(json.dumps([a.fact, a.answered, a.answer]))\n")
    env = {**os.environ, "EDGEFX_MODELS": str(Path(models).resolve())}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, capture_output=True, text=True)
    import json

    return [tuple(json.loads(line)) for line in out.stdout.splitlines()]


def agree(a: str, b: str, name: str) -> None:
    first, second = answers(a, name), answers(b, name)
    same = sum(x[:2] == y[:2] for x, y in zip(first, second))
    text = sum(x[2] == y[2] for x, y in zip(first, second))
    print(f"{name}: {len(first)} questions, same fact or refusal {same} ({same / len(first):.2%}), "
          f"same sentence {text} ({text / len(first):.2%})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["cv", "agree"])
    ap.add_argument("folders", nargs="*")
    ap.add_argument("--set", default="unseen")
    args = ap.parse_args()
    if args.what == "cv":
        cv()
    else:
        agree(*args.folders, args.set)


if __name__ == "__main__":
    main()
