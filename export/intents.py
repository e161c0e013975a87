"""Fit the question-intent classifier on the example banks (edgefx/qa/banks.json) with the exported stock sentence
model: multinomial logistic regression on the sentence vector and the question's words (the banks' word unigrams and
bigrams, and letter 3- and 4-grams) with an explicit out-of-scope class, its refusal threshold chosen by 5-fold
cross-validation on the banks (each example also seen as two noisy copies: no punctuation, typos). Deterministic: float64, zero start, L-BFGS,
fixed folds and seeds; the banks are the only data, the dev and unseen question sets are never read here."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from export.manifest import MODELS_DIR, built_with, file_record, update_manifest

log = logging.getLogger(__name__)
# > 0 keeps the problem strictly convex: one set of weights. The grid this CV searches costs five fits per value (~3 min
# here); on the 6,009-example banks it chose 1e-6 from (1e-6, 3e-6, 1e-5), so the build searches that value only.
L2 = (1e-6,)
LEXICAL_WEIGHT = 1.0  # the gram indicators' length beside the unit sentence vector (bank CV: 1.0 beat 0, vector only)
# The letter grams' length. Leave-one-writer-out on the banks (docs/experiments/qa_writers.py; writers 5-9 held out in
# turn): at equal right answers they cut the confident wrong ones by a fifth (93 % right: 5.0 -> 4.2 % wrong).
CHAR_WEIGHT = 1.0
CHOSEN_ON = "int8"  # L2 and refusal threshold are chosen by CV once, on the shipped precision's vectors
NOISY_COPIES = 2  # per bank example: what kiosk users type (no punctuation, a dropped or swapped letter)
THRESHOLDS = np.round(np.arange(0.10, 0.80, 0.02), 2)
WRONG_PENALTY = 3.0  # a confident wrong answer costs three right ones in the cross-validated objective
FOLDS = 5


def fit_recipe() -> str:
    """Hash of what the fitted weights depend on, besides the sentence model: this code and the banks."""
    from edgefx.qa.intents import banks_digest

    code = Path(__file__).read_bytes()
    return hashlib.sha256(code + banks_digest().encode()).hexdigest()[:16]


def fit(X: np.ndarray, y: np.ndarray, classes: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression weights (D x C) and biases (C) minimising mean cross-entropy + l2/2 |W|^2."""
    from scipy.optimize import minimize

    n, d = X.shape
    Y = np.zeros((n, classes))
    Y[np.arange(n), y] = 1.0

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        W, b = w[:d * classes].reshape(d, classes), w[d * classes:]
        Z = X @ W + b
        Z -= Z.max(1, keepdims=True)
        P = np.exp(Z)
        P /= P.sum(1, keepdims=True)
        G = (P - Y) / n
        value = -np.sum(Y * np.log(P + 1e-300)) / n + 0.5 * l2 * np.sum(W * W)
        return value, np.concatenate([(X.T @ G + l2 * W).ravel(), G.sum(0)])

    r = minimize(loss, np.zeros(d * classes + classes), jac=True, method="L-BFGS-B",
                 options={"maxiter": 2000, "gtol": 1e-8})
    return r.x[:d * classes].reshape(d, classes), r.x[d * classes:]


def probabilities(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    Z = X @ W + b
    Z -= Z.max(1, keepdims=True)
    P = np.exp(Z)
    return P / P.sum(1, keepdims=True)


def objective(P: np.ndarray, y: np.ndarray, oos: int, threshold: float) -> tuple[float, float, float, float]:
    """(objective, in-scope answered right, out-of-scope refused, confident wrong per question)."""
    pred, top = P.argmax(1), P.max(1)
    refused = (pred == oos) | (top < threshold)
    inside = y != oos
    right = float(np.mean(~refused[inside] & (pred[inside] == y[inside])))
    refusals = float(np.mean(refused[~inside]))
    wrong = (np.sum(~refused[inside] & (pred[inside] != y[inside])) + np.sum(~refused[~inside])) / len(y)
    return right + refusals - WRONG_PENALTY * wrong, right, refusals, float(wrong)


def noisy_copies(text: str, rng: np.random.Generator, n: int) -> list[str]:
    """Deterministic noisy copies of a bank question: punctuation (and apostrophes) dropped, and 1-2 typos (a letter
    dropped, swapped, doubled or replaced) in words of 4+ letters."""
    out = []
    for k in range(n):
        t = text.lower()
        if k % 2 == 0 or rng.random() < 0.5:
            t = re.sub(r"[?.!,;:]", "", t)
            if rng.random() < 0.5:
                t = t.replace("'", "")
        words = t.split()
        idx = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        if k % 2 == 1 or rng.random() < 0.3:
            for i in rng.permutation(idx)[:int(rng.integers(1, 3))] if idx else []:
                words[i] = _typo(words[i], rng)
        out.append(" ".join(words))
    return out


def _typo(w: str, rng: np.random.Generator) -> str:
    j, op = int(rng.integers(1, len(w) - 1)), int(rng.integers(0, 4))
    if op == 0:
        return w[:j] + w[j + 1:]
    if op == 1:
        return w[:j] + w[j + 1] + w[j] + w[j + 2:]
    if op == 2:
        return w[:j] + w[j] + w[j:]
    return w[:j] + "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(0, 26))] + w[j + 1:]


def choose(X: Any, y: np.ndarray, XA: Any, source: np.ndarray, classes: int,
           oos: int) -> tuple[float, float, list[float]]:
    """L2 strength and refusal threshold by cross-validation (a noisy copy stays in its example's fold); the centre
    of the best plateau, not a lucky point."""
    folds = np.random.default_rng(0).permutation(len(y)) % FOLDS
    yA, fA = y[source], folds[source]
    best: tuple[float, float, float, list[float]] | None = None
    for l2 in L2:
        P = np.zeros((len(y), classes))
        for k in range(FOLDS):
            W, b = fit(sp.vstack([X[folds != k], XA[fA != k]]).tocsr(),
                       np.concatenate([y[folds != k], yA[fA != k]]), classes, l2)
            P[folds == k] = probabilities(X[folds == k], W, b)
        scores = [objective(P, y, oos, t) for t in THRESHOLDS]
        values = np.array([s[0] for s in scores])
        smooth = np.array([values[max(i - 1, 0):i + 2].mean() for i in range(len(values))])
        i = int(np.argmax(smooth))
        if best is None or smooth[i] > best[0] + 1e-12:
            best = (float(smooth[i]), l2, float(THRESHOLDS[i]), [round(float(x), 4) for x in scores[i]])
    assert best is not None
    return best[1], best[2], best[3]


def bank_texts() -> tuple[list[str], list[str], np.ndarray, list[str], np.ndarray]:
    """Every bank example normalised as the runtime normalises a question, its label, its noisy copies (normalised)
    with the index of their example, and the class names."""
    from edgefx.qa.intents import banks
    from edgefx.qa.reading import load_tokenizer
    from edgefx.qa.text import shorthand, speller_for

    tokenizer = load_tokenizer(MODELS_DIR / "sentence" / "tokenizer.json")
    speller = speller_for(tokenizer.get_vocab(), [t for ts in banks().values() for t in ts])
    classes = list(banks())
    texts = [(t, c) for c in classes for t in banks()[c]]
    rng = np.random.default_rng(0)
    noisy = [(copy, i) for i, (t, _) in enumerate(texts) for copy in noisy_copies(t, rng, NOISY_COPIES)]
    return ([speller(shorthand(t)) for t, _ in texts], [speller(shorthand(t)) for t, _ in noisy],
            np.array([i for _, i in noisy]), classes, np.array([classes.index(c) for _, c in texts]))


def bank_vectors(precision: str, threads: int, bank: tuple[Any, ...] | None = None,
                 ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Every bank example embedded as the runtime embeds a question (normalised, one at a time), with labels, and
    its noisy copies with the index of their example; `bank` is `bank_texts()` when the caller has it already."""
    from edgefx.qa.intents import QuestionEncoder
    from edgefx.qa.reading import load_tokenizer
    from edgefx.runtime.backend import load_model

    tokenizer = load_tokenizer(MODELS_DIR / "sentence" / "tokenizer.json")
    encoder = QuestionEncoder(load_model("sentence", precision, "onnxruntime", "CPU", threads, MODELS_DIR), tokenizer)
    texts, noisy, source, classes, y = bank or bank_texts()
    X = np.stack([encoder(t) for t in texts])
    XA = np.stack([encoder(t) for t in noisy])
    return X, y, classes, XA, source


def design(X: np.ndarray, texts: list[str], views: list[tuple[Any, float]]) -> Any:
    """The regression's input rows: sentence vectors beside each view's weighted gram indicators (sparse), as the
    runtime's IntentClassifier.features builds them."""
    blocks = [sp.csr_matrix(X)]
    for lexical, weight in views:
        rows: list[int] = []
        cols: list[int] = []
        values: list[float] = []
        for r, text in enumerate(texts):
            c, value = lexical.entries(text)
            rows += [r] * len(c)
            cols += c
            values += [value] * len(c)
        blocks.append(weight * sp.csr_matrix((values, (rows, cols)), shape=(len(texts), len(lexical))))
    return sp.hstack(blocks).tocsr()


def fit_intents(threads: int = 2, recipe_hash: str = "") -> dict[str, Any]:
    """models/intents/<precision>.npz for fp32 and int8, with their manifest entries."""
    from edgefx.qa.intents import OUT_OF_SCOPE, banks_digest
    from edgefx.qa.lexical import LexicalFeatures, vocabulary

    folder = MODELS_DIR / "intents"
    folder.mkdir(parents=True, exist_ok=True)
    bank = bank_texts()
    texts, noisy = bank[0], bank[1]
    grams, letters = vocabulary(texts, view="words"), vocabulary(texts, view="chars")
    lexical = [(LexicalFeatures(grams, "words"), LEXICAL_WEIGHT), (LexicalFeatures(letters, "chars"), CHAR_WEIGHT)]
    vectors = {p: bank_vectors(p, threads, bank) for p in ("int8", "fp32")}
    X, y, classes, XA, source = vectors[CHOSEN_ON]
    oos = classes.index(OUT_OF_SCOPE)
    l2, threshold, cv = choose(design(X, texts, lexical), y, design(XA, noisy, lexical), source, len(classes), oos)
    report = {}
    for precision in ("fp32", "int8"):
        X, y, classes, XA, source = vectors[precision]
        W, b = fit(sp.vstack([design(X, texts, lexical), design(XA, noisy, lexical)]).tocsr(),
                   np.concatenate([y, y[source]]), len(classes), l2)
        path = folder / f"{precision}.npz"
        with path.open("wb") as fh:  # np.savez to a file object: no timestamps, the same bytes for the same weights
            np.savez(fh, W=W, b=b, classes=np.array(classes), threshold=np.float64(threshold),
                     banks_sha256=np.array(banks_digest()), l2=np.float64(l2),
                     grams=np.array(grams), lexical_weight=np.float64(LEXICAL_WEIGHT),
                     char_grams=np.array(letters), char_weight=np.float64(CHAR_WEIGHT))
        entry = {"files": {"weights": file_record(path)}, "precision": precision, "classes": classes,
                 "examples": int(len(y)), "noisy_copies": int(len(XA)), "grams": len(grams),
                 "char_grams": len(letters), "lexical_weight": LEXICAL_WEIGHT, "char_weight": CHAR_WEIGHT, "l2": l2,
                 "threshold": threshold, "chosen_on": CHOSEN_ON,
                 "cross_validation": dict(zip(("objective", "answered_right", "refused", "wrong"), cv)),
                 "banks_sha256": banks_digest(), "built_with": built_with(), "recipe_hash": recipe_hash}
        update_manifest(f"intents/{precision}", entry)
        report[precision] = {"threshold": threshold, "l2": l2, "cv": cv, "grams": len(grams),
                             "char_grams": len(letters)}
        log.info("intents/%s: %d examples, %d + %d grams, l2 %g, threshold %.2f, cv %s", precision, len(y),
                 len(grams), len(letters), l2, threshold, cv)
    (folder / "fit.json").write_text(json.dumps(report, indent=1))
    return report
