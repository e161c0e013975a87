"""What a question asks for: the stock all-MiniLM-L6-v2 sentence embedding of the question and its words, a logistic
regression over the intent families with an explicit out-of-scope class (fitted on example banks at build time), and
the slot rules that turn an intent into fact keys; or a refusal when the question is out of scope or the model is
unsure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from edgefx.qa.lexical import LexicalFeatures
from edgefx.qa.slots import keys_for, preferred_keys
from edgefx.qa.text import Speller, shorthand, speller_for
from edgefx.runtime.errors import ModelError

MAX_TOKENS = 64  # questions longer than this are cut; a kiosk question is ~10 tokens
OUT_OF_SCOPE = "oos"
# top / second / least share one family: the rank comes from rank words (slots), not from the embedding.
MERGED = {"second": "top", "least": "top"}
FIELDS = ("W", "b", "classes", "threshold", "banks_sha256", "grams", "lexical_weight", "char_grams", "char_weight")


@lru_cache(maxsize=1)
def banks() -> dict[str, list[str]]:
    """Example questions per intent family (and out of scope), shipped with the package: `qa/banks.json`."""
    raw = json.loads(resources.files("edgefx.qa").joinpath("banks.json").read_text(encoding="utf-8"))
    merged: dict[str, list[str]] = {}
    for name, examples in raw.items():
        merged.setdefault(MERGED.get(name, name), []).extend(examples)
    return merged


def banks_digest() -> str:
    """sha256 of the shipped banks: the intent weights record it, so stale weights are refused."""
    import hashlib

    return hashlib.sha256(resources.files("edgefx.qa").joinpath("banks.json").read_bytes()).hexdigest()


@dataclass(frozen=True)
class Resolution:
    """The fact keys a question asks for (None: refused), the classifier's probability, and the intent it chose."""

    keys: list[str] | None
    confidence: float
    intent: str
    vector: np.ndarray | None = None  # the question's embedding (suggestions near it are offered on a refusal)
    preferred: dict[str, str] = field(default_factory=dict)  # key -> the key to answer instead, when the result has it


class QuestionEncoder:
    """Unit sentence vectors from the exported `sentence` model (mean pooling and L2 norm are in the graph)."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.model, self.tokenizer = model, tokenizer

    def __call__(self, text: str) -> np.ndarray:
        # One text per run: int8 activation scales are per batch, so a batch would make a vector depend on its
        # neighbours; the banks were embedded the same way at build time.
        ids = self.tokenizer.encode(text).ids[:MAX_TOKENS]
        if len(ids) == MAX_TOKENS:
            ids[-1] = self.tokenizer.token_to_id("[SEP]")
        feeds = {"input_ids": np.array([ids], np.int64), "attention_mask": np.ones((1, len(ids)), np.int64),
                 "token_type_ids": np.zeros((1, len(ids)), np.int64)}
        (vector,) = self.model.run({k: feeds[k] for k in self.model.input_names})
        return np.asarray(vector[0], np.float64)


class IntentClassifier:
    """A multinomial logistic regression fitted on the example banks at build time (`python -m export intents`): it
    reads the question's sentence vector and its word and letter grams over the banks' vocabularies (W: (D + G) x C). It
    refuses when it ranks the out-of-scope class first or its top probability is under the threshold chosen by
    cross-validation on the banks."""

    def __init__(self, weights: Path) -> None:
        z = np.load(weights, allow_pickle=False)
        missing = sorted(set(FIELDS) - set(z.files))
        if missing:  # weights fitted by an older export: a clear rebuild message, not a KeyError
            raise ModelError(f"the intent weights {weights} lack {', '.join(missing)}: they were fitted by an older "
                             "export; rebuild them with `make models`")
        self.W, self.b = z["W"], z["b"]
        self.classes = [str(c) for c in z["classes"]]
        self.threshold = float(z["threshold"])
        self.banks_sha256 = str(z["banks_sha256"])
        self.oos = self.classes.index(OUT_OF_SCOPE)
        self.lexical = [(LexicalFeatures((str(g) for g in z["grams"]), "words"), float(z["lexical_weight"])),
                        (LexicalFeatures((str(g) for g in z["char_grams"]), "chars"), float(z["char_weight"]))]

    def features(self, vector: np.ndarray, text: str) -> np.ndarray:
        """What the regression reads: the sentence vector, then the weighted word and letter gram indicators."""
        return np.concatenate([vector] + [weight * view(text) for view, weight in self.lexical])

    def probabilities(self, vector: np.ndarray, text: str) -> np.ndarray:
        z = self.features(vector, text) @ self.W + self.b
        p = np.exp(z - z.max())
        return p / p.sum()

    def decide(self, vector: np.ndarray, text: str) -> tuple[str | None, float, str]:
        """(intent or None when refused, the regression's probability, the intent it ranked first)."""
        p = self.probabilities(vector, text)
        best = int(np.argmax(p))
        intent = self.classes[best]
        if best == self.oos:
            return None, float(1.0 - p[best]), intent
        if p[best] >= self.threshold:
            return intent, float(p[best]), intent
        return None, float(p[best]), intent


class IntentResolver:
    """Question -> Resolution: normalise (shorthand, typos of domain words), embed, classify, fill the slots."""

    def __init__(self, encoder: QuestionEncoder, classifier: IntentClassifier) -> None:
        self.encoder, self.classifier = encoder, classifier
        vocabulary = encoder.tokenizer.get_vocab()
        self.speller: Speller = speller_for(vocabulary, [t for ts in banks().values() for t in ts])

    def normalise(self, question: str) -> str:
        return self.speller(shorthand(question))

    def resolve(self, question: str) -> Resolution:
        text = self.normalise(question)
        vector = self.encoder(text)
        intent, confidence, ranked = self.classifier.decide(vector, text)
        if intent is None:
            return Resolution(None, confidence, ranked, vector)
        keys = keys_for(intent, text)
        return Resolution(keys, confidence, keys[0].split(":")[0] if keys else intent, vector,
                          preferred_keys(keys, text))
