"""Lab (issue 13): how the intent regression does on a writer it has never read: leave-one-writer-out on the banks.

Pooled cross-validation mixes every writer into every fold, so a writer's habits are always in training; a user (or
the questions "written elsewhere") is a new writer. Here each of the last five bank writers (their files, as they
wrote them, are in `docs/experiments/bank_writers/`) is held out in turn, the regression is fitted on everything
else (with its noisy copies) and scored on the held-out writer's examples, per design: the word grams alone beside
the sentence vector, or with letter grams too, at several L2 strengths. Reports right / refused / wrong per
answerable at each threshold, summed over the held-out writers. Never reads a question set (dev, dev2 or unseen).

Measured 2 Dec 2026 (7,207-example banks, int8 vectors; 3,201 held-out examples), right / wrong per answerable:
words, L2 1e-6: t 0.62 93.5 / 5.3 %, t 0.74 91.4 / 4.1 %, t 0.86 88.1 / 2.9 %;
+ letters, L2 1e-6: t 0.70 93.1 / 4.2 %, t 0.78 91.7 / 3.4 %, t 0.86 89.6 / 2.9 %;
words, L2 1e-5: t 0.66 89.6 / 4.0 %, t 0.78 84.8 / 2.7 % (stronger L2 only trades right for wrong).
A new writer is harder than the held-out set (shipped design there: 96.7 % right, 1.65 % wrong): writers 8 and 9
wrote boundary cases on purpose.

Usage: .venv/bin/python docs/experiments/qa_writers.py docs/experiments/bank_writers/banks_writer{5,6,7,8,9}.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
CACHE = "/tmp/edgefx_lab_bank_vectors_{}.npz"  # per banks digest: a stale cache would misalign the rows


def main() -> None:
    import scipy.sparse as sp

    from edgefx.qa.intents import OUT_OF_SCOPE, banks, banks_digest
    from edgefx.qa.lexical import LexicalFeatures, vocabulary
    from export import intents as fm

    ap = argparse.ArgumentParser()
    ap.add_argument("writers", nargs="+", help="bank writer files (class -> examples) to hold out one at a time")
    ap.add_argument("--designs", default="words:1e-6,chars:1e-6,words:1e-5,words:1e-4",
                    help="features:L2 pairs; words = word grams only, chars = with letter grams (shipped)")
    args = ap.parse_args()

    bank = fm.bank_texts()
    texts, noisy, source, classes, y = bank
    raw = [t for c in classes for t in banks()[c]]
    cache = Path(CACHE.format(banks_digest()[:12]))
    if cache.is_file():
        z = np.load(cache)
        X, XA = z["X"], z["XA"]
    else:
        X, _, _, XA, _ = fm.bank_vectors(fm.CHOSEN_ON, 2, bank)
        np.savez(cache, X=X, XA=XA)
    writer = np.zeros(len(y), dtype=int)
    for w, path in enumerate(args.writers, start=1):
        mine = {t for ts in json.loads(Path(path).read_text()).values() for t in ts}
        writer[[i for i, t in enumerate(raw) if t in mine]] = w
    print("examples per writer (0: the earlier writers):", np.bincount(writer).tolist())
    oos, C = classes.index(OUT_OF_SCOPE), len(classes)
    answerable = y != oos
    for design in args.designs.split(","):
        features, l2 = design.split(":")
        P = np.zeros((len(y), C))
        for w in range(1, len(args.writers) + 1):
            train, test = writer != w, writer == w
            train_noisy = train[source]
            kept = [t for t, k in zip(texts, train) if k]  # each view's vocabulary from the training writers only
            views = [(LexicalFeatures(vocabulary(kept, view="words"), "words"), fm.LEXICAL_WEIGHT)]
            if features == "chars":
                views.append((LexicalFeatures(vocabulary(kept, view="chars"), "chars"), fm.CHAR_WEIGHT))
            F, FA = fm.design(X, texts, views), fm.design(XA, noisy, views)
            W, b = fm.fit(sp.vstack([F[train], FA[train_noisy]]).tocsr(),
                          np.concatenate([y[train], y[source][train_noisy]]), C, float(l2))
            P[test] = fm.probabilities(F[test], W, b)
        held = writer > 0
        pred, top = P.argmax(1), P.max(1)
        for t in np.round(np.arange(0.50, 0.96, 0.04), 2):
            answered = (pred != oos) & (top >= t) & held
            a, u = answerable & held, ~answerable & held
            right = np.sum(answered[a] & (pred[a] == y[a])) / a.sum()
            wrong = (np.sum(answered[a] & (pred[a] != y[a])) + np.sum(answered[u])) / a.sum()
            print(f"{design:11s} t {t:.2f} right {right:.3f} refused {1 - answered[u].mean():.3f} "
                  f"wrong per answerable {wrong:.4f}", flush=True)


if __name__ == "__main__":
    main()
