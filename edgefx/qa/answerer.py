"""Answer a question about one verification result: decide which fact it asks for (or that the result cannot say),
let the reader extract the value from that fact's sentence, and say it as a sentence; or refuse honestly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefx.qa.answers import compose
from edgefx.qa.facts import Fact
from edgefx.qa.intents import (
    IntentClassifier,
    IntentResolver,
    QuestionEncoder,
    Resolution,
    banks_digest,
)
from edgefx.qa.reading import (
    MAX_QUESTION_CHARS,
    SpanReader,
    load_tokenizer,
    validate_question,
)
from edgefx.qa.slots import IDENTITY_INTENTS
from edgefx.runtime.errors import ModelError
from edgefx.runtime.manifest import Manifest

__all__ = ["MAX_QUESTION_CHARS", "REFUSAL", "Answer", "QuestionAnswerer", "validate_question"]

REFUSAL = "I can't tell that from this result."
NOT_IN_RESULT = "This result does not include that"
MAX_FACTS = 2  # both photos at most: a kiosk answer stays short
SUGGESTIONS = [
    "Is it a match?",
    "What is the similarity score?",
    "What is the decision threshold?",
    "Why was it decided this way?",
    "What can I do to be recognised?",
    "How confident is the decision?",
    "Which part of my face mattered most?",
    "Is my photo sharp enough?",
    "Is my head turned too much?",
    "What does single removal mean?",
    "Which face recognition model was used?",
    "How long did the verification take?",
]


@dataclass
class Answer:
    """An answer sentence (or the refusal), the value span and fact it came from, confidence 0..1, the evidence
    sentences, suggestions when refused, and whether it answered."""

    answer: str
    confidence: float
    evidence: str | None
    suggestions: list[str] = field(default_factory=list)
    answered: bool = True
    value: str | None = None
    fact: str | None = None
    intent: str | None = None
    value_source: str | None = None  # "reader": the reader's span agreed with the fact's; "fact": it did not

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class QuestionAnswerer:
    """Intent resolver + span reader over the facts of one result; thread-safe (no per-question state)."""

    def __init__(self, precision: str = "int8", backend: str = "auto", device: str = "CPU", threads: int | None = 2,
                 models_dir: Path | None = None, verify_hashes: bool = True) -> None:
        from edgefx.runtime.backend import load_model
        from edgefx.runtime.config import default_models_dir

        models_dir = Path(models_dir or default_models_dir())
        # "auto" means onnxruntime here, whoever builds the answerer: OpenVINO ran the dynamically quantized int8
        # graphs 2.7x slower (fp32 1.2x) on the development CPU, AMD EPYC Zen 3 (`edgefx bench qa`); a backend named
        # explicitly is honoured.
        backend = "onnxruntime" if backend == "auto" else backend
        load = dict(backend=backend, device=device, threads=threads, models_dir=models_dir, verify_hashes=verify_hashes)
        self.reader = SpanReader(load_model("qa", precision, **load),  # type: ignore[arg-type]
                                 load_tokenizer(models_dir / "qa" / "tokenizer.json"))
        encoder = QuestionEncoder(load_model("sentence", precision, **load),  # type: ignore[arg-type]
                                  load_tokenizer(models_dir / "sentence" / "tokenizer.json"))
        (weights,) = Manifest(models_dir).artifact("intents", precision, "weights")
        classifier = IntentClassifier(weights.verified_path(verify_hashes))
        if classifier.banks_sha256 != banks_digest():
            raise ModelError("the intent weights were fitted on other example banks than edgefx/qa/banks.json: "
                             "rebuild them with `make models` (or `python -m export intents`)")
        self.resolver = IntentResolver(encoder, classifier)
        # Embedded once at load: a refusal offers the suggested questions nearest to what was asked.
        self.suggestion_vectors = np.stack([encoder(self.resolver.normalise(q)) for q in SUGGESTIONS])
        self.precision = precision
        self.threshold = classifier.threshold

    @classmethod
    def load(cls, settings: Any, precision: str = "int8") -> "QuestionAnswerer":
        """From `Settings` (backend "auto": onnxruntime, see __init__)."""
        return cls(precision=precision, backend=settings.backend, device=settings.device, threads=settings.threads,
                   models_dir=settings.models_dir, verify_hashes=settings.verify_hashes)

    def models(self) -> list[Any]:
        """The loaded models (for freeing their buffers)."""
        return [self.reader.qa, self.resolver.encoder.model]

    def extract(self, question: str, fact: Fact) -> tuple[str, bool]:
        """The reader's span in the fact's sentence, and whether it agrees with the span the fact states. Where it
        does not (a sentence kind it was not trained on, or a span cut short), the fact's own span is the value:
        the answer never carries a number the result does not state."""
        ((chars, _, _),) = self.reader.read(question, [fact.text])
        span = fact.text[chars[0]:chars[1]] if chars else ""
        agrees = bool(span) and (span in fact.answer or fact.answer in span)
        return (fact.answer, agrees)

    def suggestions(self, resolution: Resolution, n: int = 3) -> list[str]:
        """The n suggested questions closest to the one asked."""
        if resolution.vector is None:
            return SUGGESTIONS[:n]
        order = np.argsort(-(self.suggestion_vectors @ resolution.vector), kind="stable")
        return [SUGGESTIONS[int(i)] for i in order[:n]]

    def resolve(self, question: str) -> Resolution:
        return self.resolver.resolve(validate_question(question))

    def answer(self, facts: list[Fact], question: str) -> Answer:
        """Answer `question` from the facts of one result, or refuse (with suggestions)."""
        resolution = self.resolve(question)
        if resolution.keys is None:
            return Answer(REFUSAL, round(resolution.confidence, 4), None, self.suggestions(resolution), answered=False,
                          intent=resolution.intent)
        by_key = {f.key: f for f in facts}
        keys = [resolution.preferred[k] if resolution.preferred.get(k) in by_key else k for k in resolution.keys]
        chosen = [by_key[k] for k in keys if k in by_key][:MAX_FACTS]
        if not chosen and resolution.intent in IDENTITY_INTENTS:  # who someone is: only an identification says
            return Answer(REFUSAL, round(resolution.confidence, 4), None, self.suggestions(resolution), answered=False,
                          intent=resolution.intent)
        if not chosen:
            # an explanation adds the region facts; when the result has that kind of fact already, asking for one
            # would not help
            has_kind = any(f.key.split(":")[0] == resolution.intent for f in facts)
            hint = "" if has_kind else "; ask for an explanation to get more facts"
            text = f"{NOT_IN_RESULT} ({resolution.intent.replace('_', ' ')}){hint}."
            return Answer(text, round(resolution.confidence, 4), None, self.suggestions(resolution), answered=False,
                          intent=resolution.intent)
        values = [self.extract(question, f) for f in chosen]
        sentence = compose([(f, value) for f, (value, _) in zip(chosen, values)], by_key)
        return Answer(sentence, round(resolution.confidence, 4), " ".join(f.text for f in chosen), [],
                      value=values[0][0], fact=chosen[0].key, intent=resolution.intent,
                      value_source="reader" if values[0][1] else "fact")
