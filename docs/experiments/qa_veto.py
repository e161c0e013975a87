"""Lab (issue 13): can the nearest-example view veto confident regression answers, and so cut confident wrong answers?

Rules compared on the banks' 5-fold cross-validation (the export's folds, L2 and objective; the nearest examples of a
held-out question come from the training folds only), the rule's parameter chosen there, then measured on the tuning
sets dev and dev2 through the product's own answerer. Never reads tests/data/qa_unseen.jsonl.

Usage: .venv/bin/python docs/experiments/qa_veto.py [--precision int8] [--threads 1]

Written for the embedding-only classifier with a nearest-example second opinion (git 8934844); the shipped classifier
has since dropped that second opinion and reads the question's words too, so run it from that commit to reproduce.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from export import intents as fitmod  # noqa: E402
from edgefx.qa.intents import OUT_OF_SCOPE, IntentClassifier  # noqa: E402

CACHE = Path("/tmp/qa_veto_bank_{}.npz")
VETO_MARGINS = np.round(np.arange(-0.10, 0.31, 0.02), 2)  # refuse when the OOS bank beats the best intent by this
DISAGREE_P = np.round(np.arange(0.70, 1.001, 0.02), 2)  # refuse a disagreement with the neighbours below this p


def bank(precision: str, threads: int) -> tuple[np.ndarray, ...]:
    path = Path(str(CACHE).format(precision))
    if path.is_file():
        z = np.load(path)
        return z["X"], z["y"], z["XA"], z["source"], list(z["classes"])
    X, y, classes, XA, source = fitmod.bank_vectors(precision, threads)
    np.savez(path, X=X, y=y, XA=XA, source=source, classes=np.array(classes))
    return X, y, XA, source, classes


def knn_scores(S: np.ndarray, labels: np.ndarray, classes: int, k: int = 3) -> np.ndarray:
    """(n, C) mean of the k best similarities per class."""
    return np.stack([np.sort(S[:, labels == c], axis=1)[:, -k:].mean(1) for c in range(classes)], axis=1)


def cross_validated(X, y, XA, source, classes: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    folds = np.random.default_rng(0).permutation(len(y)) % fitmod.FOLDS
    yA, fA = y[source], folds[source]
    P, K = np.zeros((len(y), classes)), np.zeros((len(y), classes))
    for k in range(fitmod.FOLDS):
        W, b = fitmod.fit(np.vstack([X[folds != k], XA[fA != k]]), np.concatenate([y[folds != k], yA[fA != k]]),
                          classes, l2)
        P[folds == k] = fitmod.probabilities(X[folds == k], W, b)
        K[folds == k] = knn_scores(X[folds == k] @ X[folds != k].T, y[folds != k], classes)
    return P, K


def decisions(P, K, oos: int, t: float, knn_min: float, knn_margin: float, veto: float | None,
              disagree: float | None) -> np.ndarray:
    """Predicted class per row (oos = refused) under today's rule plus an optional veto."""
    pred, top = P.argmax(1), P.max(1)
    inside = np.delete(np.arange(P.shape[1]), oos)
    kbest = inside[np.argmax(K[:, inside], axis=1)]
    ktop, kout = K[np.arange(len(K)), kbest], K[:, oos]
    knn_pick = np.where((ktop < knn_min) | (ktop - kout < knn_margin), oos, kbest)
    answered = (pred != oos) & ((top >= t) | (knn_pick == pred))
    if veto is not None:
        answered &= ~(kout - ktop >= veto)
    if disagree is not None:
        answered &= ~((kbest != pred) & (top < disagree))
    return np.where(answered, pred, oos)


def objective(pred: np.ndarray, y: np.ndarray, oos: int) -> tuple[float, ...]:
    P = np.zeros((len(y), oos + 1 if oos + 1 > pred.max() + 1 else pred.max() + 1))
    P[np.arange(len(y)), pred] = 1.0
    return fitmod.objective(P, y, oos, 0.5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--precision", default="int8")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-sets", action="store_true")
    args = ap.parse_args()
    fit = json.loads((ROOT / "models" / "intents" / "fit.json").read_text())[args.precision]
    X, y, XA, source, classes = bank(args.precision, args.threads)
    oos = classes.index(OUT_OF_SCOPE)
    P, K = cross_validated(X, y, XA, source, len(classes), fit["l2"])
    base = dict(t=fit["threshold"], knn_min=fit["knn_min"], knn_margin=fit["knn_margin"])
    rows = {"today": objective(decisions(P, K, oos, **base, veto=None, disagree=None), y, oos)}
    for v in VETO_MARGINS:
        rows[f"veto {v:+.2f}"] = objective(decisions(P, K, oos, **base, veto=float(v), disagree=None), y, oos)
    for d in DISAGREE_P:
        rows[f"disagree p<{d:.2f}"] = objective(decisions(P, K, oos, **base, veto=None, disagree=float(d)), y, oos)
    for name, (obj, right, refused, wrong) in rows.items():
        print(f"{name:18s} objective {obj:.4f} right {right:.4f} refused {refused:.4f} wrong/q {wrong:.4f}")
    if args.no_sets:
        return
    best_v = max(VETO_MARGINS, key=lambda v: rows[f"veto {v:+.2f}"][0])
    best_d = max(DISAGREE_P, key=lambda d: rows[f"disagree p<{d:.2f}"][0])
    print("chosen on CV: veto", best_v, "disagree", best_d)
    tuning_sets(args, float(best_v), float(best_d))


def tuning_sets(args: argparse.Namespace, veto: float, disagree: float) -> None:
    from edgefx.evaluation.qa_eval import evaluate, set_paths
    from edgefx.qa.answerer import QuestionAnswerer

    original = IntentClassifier.decide

    def patched(rule: str):
        def decide(self, vector):
            intent, p, ranked = original(self, vector)
            if intent is None:
                return intent, p, ranked
            similarity = (self.bank @ vector)[None, :]
            K = knn_scores(similarity, self.labels, len(self.classes))[0]
            inside = np.delete(np.arange(len(self.classes)), self.oos)
            kbest = int(inside[np.argmax(K[inside])])
            if rule == "veto" and K[self.oos] - K[kbest] >= veto:
                return None, p, ranked
            if rule == "disagree" and self.classes[kbest] != ranked and p < disagree:
                return None, p, ranked
            return intent, p, ranked
        return decide

    qa = QuestionAnswerer(precision=args.precision, threads=args.threads)
    for rule in ("today", "veto", "disagree"):
        IntentClassifier.decide = original if rule == "today" else patched(rule)
        for name in ("dev", "dev2"):
            r = evaluate(qa, *set_paths(name))
            print(f"{rule:9s} {name:5s} right {r['answerable_right']:.3f} refused {r['unanswerable_refused']:.3f} "
                  f"confident wrong {r['confident_wrong']}")
    IntentClassifier.decide = original


if __name__ == "__main__":
    main()
