"""Answer questions about one verification result: pick relevant sentences, extract a span, or refuse honestly."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edgefx.qa.retrieval import CACHE_SENTENCES, focus_scores, question_words, retrieval_key, retrieval_words
from edgefx.runtime.errors import InvalidQuestion

MAX_QUESTION_CHARS = 1000
MAX_QUESTION_TOKENS = 40
MAX_SEQUENCE_TOKENS = 160
MAX_ANSWER_TOKENS = 40
# Sentences the reader reads: the contrastively trained sentence model puts the gold sentence first for 97 % of the
# answerable dev questions, and reading one sentence takes ~10 ms against ~25 ms for three.
TOP_K = 1
DEFAULT_THRESHOLD = 0.5
REFUSAL = "I can't tell from this result."
# With more than one candidate, the sentence read is the best by FUSION_WEIGHT x relevance + the reader's
# span-vs-no-answer log-odds (clipped to +-LOG_ODDS_CLIP).
FUSION_WEIGHT = 20.0
LOG_ODDS_CLIP = 10.0
# Bumped whenever encode_pair/join_context change: the trained weights depend on this exact encoding.
ENCODING_VERSION = 1

CLS_ID, SEP_ID = 101, 102
SUGGESTIONS = [
    "Is it a match?",
    "What is the similarity score?",
    "What is the decision threshold?",
    "Why is it a match or not?",
    "How confident is the decision?",
    "Which region mattered most in photo A?",
    "Which region mattered most in photo B?",
    "What was the least important region in photo A?",
    "Do the explanation methods agree?",
    "What does single removal mean?",
    "How big is the face in photo A?",
    "Which face recognition model was used?",
    "How long did the verification take?",
]


class Encoding(NamedTuple):
    """A tokenised (question, context) pair; offsets index into the joined context string."""

    ids: list[int]
    type_ids: list[int]
    attention_mask: list[int]
    offsets: list[tuple[int, int]]
    is_context: list[bool]


@dataclass
class Answer:
    """An answer: the span (or the refusal), its confidence 0..1, the sentence it came from, and suggestions."""

    answer: str
    confidence: float
    evidence: str | None
    suggestions: list[str] = field(default_factory=list)
    answered: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_tokenizer(path: Path) -> Any:
    """The WordPiece tokenizer without the padding/truncation that tokenizer.json ships with (we do our own)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def join_context(sentences: list[str]) -> tuple[str, list[int]]:
    """Join sentences with single spaces; return the text and each sentence's start offset."""
    starts, pos = [], 0
    for sentence in sentences:
        starts.append(pos)
        pos += len(sentence) + 1
    return " ".join(sentences), starts


def encode_pair(tokenizer: Any, question: str, context: str, max_len: int = MAX_SEQUENCE_TOKENS,
                max_question: int = MAX_QUESTION_TOKENS) -> Encoding:
    """[CLS] question [SEP] context [SEP], the question cut to `max_question` tokens and the context to fit."""
    q = tokenizer.encode(question, add_special_tokens=False)
    c = tokenizer.encode(context, add_special_tokens=False)
    q_ids = q.ids[:max_question]
    room = max_len - len(q_ids) - 3
    c_ids, c_offsets = c.ids[:room], c.offsets[:room]
    ids = [CLS_ID] + q_ids + [SEP_ID] + c_ids + [SEP_ID]
    type_ids = [0] * (len(q_ids) + 2) + [1] * (len(c_ids) + 1)
    offsets = [(0, 0)] * (len(q_ids) + 2) + list(c_offsets) + [(0, 0)]
    is_context = [False] * (len(q_ids) + 2) + [True] * len(c_ids) + [False]
    return Encoding(ids, type_ids, [1] * len(ids), offsets, is_context)


def validate_question(question: object) -> str:
    """The stripped question, or InvalidQuestion when it is not text, empty, or over the length limit."""
    if not isinstance(question, str):
        raise InvalidQuestion("the question must be text")
    stripped = question.strip()
    if not stripped:
        raise InvalidQuestion("the question is empty; ask something about the result, e.g. 'Is it a match?'")
    if len(stripped) > MAX_QUESTION_CHARS:
        raise InvalidQuestion(f"the question has {len(stripped)} characters; the limit is {MAX_QUESTION_CHARS}")
    return stripped


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


@dataclass(frozen=True)
class ConfidenceModel:
    """P(the answer is right) from three readings of the chosen sentence: its relevance to the question, the reader's
    span-vs-no-answer log-odds, and its relevance margin over the next-best sentence. A logistic model fitted on the
    calibration half of the dev set (`edgefx.qa_eval.calibrate`) and stored with the refusal threshold."""

    intercept: float
    relevance: float
    log_odds: float
    margin: float

    def __call__(self, relevance: float, log_odds: float, margin: float) -> float:
        z = self.intercept + self.relevance * relevance + self.log_odds * log_odds + self.margin * margin
        return float(1.0 / (1.0 + np.exp(-z)))


# Only for a models folder without a calibration file (rounded from the int8 fit).
DEFAULT_CONFIDENCE = ConfidenceModel(intercept=-4.3, relevance=9.2, log_odds=0.12, margin=1.0)


def load_calibration(models_dir: Path, precision: str) -> tuple[float, ConfidenceModel]:
    """The refusal threshold and confidence model calibrated on the dev split (models/calibration/qa-<precision>.json)."""
    path = models_dir / "calibration" / f"qa-{precision}.json"
    if not path.is_file():
        return DEFAULT_THRESHOLD, DEFAULT_CONFIDENCE
    record = json.loads(path.read_text())
    model = record.get("confidence_model")
    return float(record["threshold"]), ConfidenceModel(**model) if model else DEFAULT_CONFIDENCE


@dataclass(frozen=True)
class Reading:
    """The best span before the refusal threshold, where it came from, and what its confidence is made of."""

    span: str | None
    evidence: str | None
    relevance: float
    log_odds: float
    margin: float
    confidence: float

    @property
    def features(self) -> tuple[float, float, float]:
        return self.relevance, self.log_odds, self.margin


class QuestionAnswerer:
    """Extractive QA over a context document; thread-safe; caches sentence embeddings per context."""

    def __init__(self, precision: str = "int8", backend: str = "auto", device: str = "CPU", threads: int | None = 2,
                 models_dir: Path | None = None, top_k: int = TOP_K, threshold: float | None = None,
                 verify_hashes: bool = True) -> None:
        from edgefx.runtime.backend import load_model
        from edgefx.runtime.config import default_models_dir

        models_dir = Path(models_dir or default_models_dir())
        self.qa = load_model("qa", precision, backend, device, threads, models_dir, verify_hashes)
        self.sentence = load_model("sentence", precision, backend, device, threads, models_dir, verify_hashes)
        self.tokenizer = load_tokenizer(models_dir / "qa" / "tokenizer.json")
        self.precision = precision
        self.top_k = top_k
        calibrated_threshold, self.confidence_model = load_calibration(models_dir, precision)
        self.threshold = calibrated_threshold if threshold is None else threshold
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._suggestion_vectors = self.embed(SUGGESTIONS)

    @classmethod
    def load(cls, settings: Any, precision: str = "int8") -> "QuestionAnswerer":
        """From `edgefx.config.Settings`. QA runs int8 on onnxruntime unless a backend is forced: OpenVINO ran the
        dynamically quantized graphs about 2x slower here (`edgefx bench qa`), and the threshold is calibrated on
        onnxruntime."""
        backend = "onnxruntime" if settings.backend == "auto" else settings.backend
        return cls(precision=precision, backend=backend, device=settings.device, threads=settings.threads,
                   models_dir=settings.models_dir, verify_hashes=settings.verify_hashes)

    def embed(self, texts: list[str]) -> np.ndarray:
        """L2-normalised sentence embeddings, one row per text."""
        encs = [self.tokenizer.encode(t) for t in texts]
        length = max(len(e.ids) for e in encs)
        ids = np.zeros((len(encs), length), dtype=np.int64)
        mask = np.zeros_like(ids)
        for i, e in enumerate(encs):
            ids[i, :len(e.ids)] = e.ids
            mask[i, :len(e.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (vectors,) = self.sentence.run({k: feeds[k] for k in self.sentence.input_names})
        return vectors

    def context_vectors(self, context: list[str]) -> np.ndarray:
        """Sentence embeddings for retrieval. Numbers are masked first, so "The decision threshold is 0.363." and
        "... is 0.310." share one cached vector: after a few results almost no sentence needs the encoder."""
        masked = [retrieval_key(s) for s in context]
        with self._lock:
            missing = list(dict.fromkeys(m for m in masked if m not in self._cache))
        for sentence in missing:
            # One at a time: int8 activation scales are per batch, so batching would make a sentence's vector
            # depend on its neighbours (and answers on which results were seen before).
            (vector,) = self.embed([sentence])
            with self._lock:
                self._cache[sentence] = vector
        with self._lock:
            out = np.stack([self._cache[m] for m in masked])
            for m in masked:
                self._cache.move_to_end(m)
            while len(self._cache) > CACHE_SENTENCES:
                self._cache.popitem(last=False)
        return out

    def relevance(self, context: list[str], question: str, question_vector: np.ndarray) -> np.ndarray:
        """Sentence scores: embedding similarity, word overlap, and agreement on the photo/method/region named."""
        similarity = self.context_vectors(context) @ question_vector
        q_words = question_words(question)
        overlap = np.array([len(q_words & retrieval_words(s)) for s in context], dtype=np.float32)
        return similarity + 0.1 * overlap + focus_scores(question, context)

    def suggestions(self, question_vector: np.ndarray, n: int = 3) -> list[str]:
        order = np.argsort(-(self._suggestion_vectors @ question_vector))
        return [SUGGESTIONS[int(i)] for i in order[:n]]

    def read(self, question: str, sentences: list[str]) -> list[tuple[tuple[int, int] | None, float, float]]:
        """Run the span reader on each sentence alone (one batch): per sentence (best span as character offsets
        or None, P(best span), P(no answer))."""
        encs = [encode_pair(self.tokenizer, question, s) for s in sentences]
        length = max(len(e.ids) for e in encs)
        feeds = {k: np.zeros((len(encs), length), dtype=np.int64)
                 for k in ("input_ids", "attention_mask", "token_type_ids")}
        for i, e in enumerate(encs):
            feeds["input_ids"][i, :len(e.ids)] = e.ids
            feeds["attention_mask"][i, :len(e.ids)] = 1
            feeds["token_type_ids"][i, :len(e.ids)] = e.type_ids
        start_logits, end_logits = self.qa.run({k: feeds[k] for k in self.qa.input_names})
        out = []
        for i, e in enumerate(encs):
            allowed = np.zeros(length, dtype=bool)
            allowed[:len(e.ids)] = e.is_context
            allowed[0] = True  # [CLS] is the no-answer option
            p_start = _softmax(np.where(allowed, start_logits[i], -1e9))
            p_end = _softmax(np.where(allowed, end_logits[i], -1e9))
            tokens = np.flatnonzero(e.is_context)
            best, best_p = None, 0.0
            for a in tokens[np.argsort(-p_start[tokens])[:10]]:
                for b in tokens[np.argsort(-p_end[tokens])[:10]]:
                    if a <= b < a + MAX_ANSWER_TOKENS and p_start[a] * p_end[b] > best_p:
                        best, best_p = (int(a), int(b)), float(p_start[a] * p_end[b])
            chars = (e.offsets[best[0]][0], e.offsets[best[1]][1]) if best else None
            out.append((chars, best_p, float(p_start[0] * p_end[0])))
        return out

    def candidates(self, context: list[str], question: str, question_vector: np.ndarray) -> tuple[list[int],
                                                                                               np.ndarray]:
        """The top-k sentences by relevance, and every sentence's relevance."""
        relevance = self.relevance(context, question, question_vector)
        return [int(i) for i in np.argsort(-relevance, kind="stable")[: self.top_k]], relevance

    def _read_best(self, context: list[str], question: str) -> tuple[Reading, np.ndarray]:
        question = validate_question(question)
        question_vector = self.embed([question])[0]
        if not context:
            return Reading(None, None, 0.0, -LOG_ODDS_CLIP, 0.0, 0.0), question_vector
        top, relevance = self.candidates(context, question, question_vector)
        sentences = [context[i] for i in top]
        readings = self.read(question, sentences)
        log_odds = np.array([np.log(p + 1e-9) - np.log(null + 1e-9) if chars else -LOG_ODDS_CLIP
                             for chars, p, null in readings]).clip(-LOG_ODDS_CLIP, LOG_ODDS_CLIP)
        best = int(np.argmax(FUSION_WEIGHT * relevance[top] + log_odds))
        chars = readings[best][0]
        if chars is None:
            return Reading(None, None, float(relevance[top[best]]), -LOG_ODDS_CLIP, 0.0, 0.0), question_vector
        others = np.delete(relevance, top[best])
        margin = float(relevance[top[best]] - others.max()) if others.size else 1.0
        features = (float(relevance[top[best]]), float(log_odds[best]), margin)
        span = sentences[best][chars[0]:chars[1]]
        return Reading(span, sentences[best], *features, self.confidence_model(*features)), question_vector

    def reading(self, context: list[str], question: str) -> Reading:
        """The best span before the refusal threshold, with its evidence sentence and confidence features."""
        return self._read_best(context, question)[0]

    def raw_answer(self, context: list[str], question: str) -> tuple[str | None, float, str | None]:
        """The best span before the refusal threshold: (span or None, confidence, evidence sentence)."""
        r = self.reading(context, question)
        return r.span, r.confidence, r.evidence

    def answer(self, context: list[str], question: str) -> Answer:
        """Answer `question` from `context`, or refuse with suggestions when the model is not confident enough."""
        r, question_vector = self._read_best(context, question)
        if r.span is None or r.confidence < self.threshold:
            return Answer(REFUSAL, round(r.confidence, 4), None, self.suggestions(question_vector), answered=False)
        return Answer(r.span, round(r.confidence, 4), r.evidence)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
