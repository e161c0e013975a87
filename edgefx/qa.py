"""Answer questions about one verification result: pick relevant sentences, extract a span, or refuse honestly."""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edgefx.errors import InvalidQuestion

MAX_QUESTION_CHARS = 1000
MAX_QUESTION_TOKENS = 40
MAX_SEQUENCE_TOKENS = 160
MAX_ANSWER_TOKENS = 40
TOP_K = 3
DEFAULT_THRESHOLD = 0.5
REFUSAL = "I can't tell from this result."
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
_STOPWORDS = frozenset(
    "a an the is was were are be been of in on at to for by with and or it its this that what which who how why "
    "did does do me my i you your please pls tell give show so can could would about from there".split())


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


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def load_threshold(models_dir: Path, precision: str) -> float:
    """The refusal threshold calibrated on the dev split (models/calibration/qa-<precision>.json)."""
    path = models_dir / "calibration" / f"qa-{precision}.json"
    if path.is_file():
        return float(json.loads(path.read_text())["threshold"])
    return DEFAULT_THRESHOLD


class QuestionAnswerer:
    """Extractive QA over a context document; thread-safe; caches sentence embeddings per context."""

    def __init__(self, precision: str = "int8", backend: str = "auto", device: str = "CPU", threads: int | None = 2,
                 models_dir: Path | None = None, top_k: int = TOP_K, threshold: float | None = None,
                 verify_hashes: bool = True) -> None:
        from edgefx.backend import load_model
        from edgefx.config import default_models_dir

        models_dir = Path(models_dir or default_models_dir())
        self.qa = load_model("qa", precision, backend, device, threads, models_dir, verify_hashes)
        self.sentence = load_model("sentence", precision, backend, device, threads, models_dir, verify_hashes)
        self.tokenizer = load_tokenizer(models_dir / "qa" / "tokenizer.json")
        self.precision = precision
        self.top_k = top_k
        self.threshold = load_threshold(models_dir, precision) if threshold is None else threshold
        self._cache: OrderedDict[tuple[str, ...], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._suggestion_vectors = self.embed(SUGGESTIONS)

    @classmethod
    def load(cls, settings: Any, precision: str = "int8") -> "QuestionAnswerer":
        """From `edgefx.config.Settings`; QA runs int8 (same answers as fp32 on the dev set, faster; see README)."""
        return cls(precision=precision, backend=settings.backend, device=settings.device, threads=settings.threads,
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
        """Sentence embeddings of a context, computed once per distinct context (multi-turn questions reuse them)."""
        key = tuple(context)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        vectors = self.embed(list(context))
        with self._lock:
            self._cache[key] = vectors
            while len(self._cache) > 32:
                self._cache.popitem(last=False)
        return vectors

    def select(self, context: list[str], question: str, question_vector: np.ndarray) -> list[int]:
        """Indices (in document order) of the top-k sentences by embedding similarity plus word overlap."""
        similarity = self.context_vectors(context) @ question_vector
        q_words = _words(question)
        overlap = np.array([len(q_words & _words(s)) for s in context], dtype=np.float32)
        score = similarity + 0.05 * overlap
        top = np.argsort(-score)[: self.top_k]
        return sorted(int(i) for i in top)

    def suggestions(self, question_vector: np.ndarray, n: int = 3) -> list[str]:
        order = np.argsort(-(self._suggestion_vectors @ question_vector))
        return [SUGGESTIONS[int(i)] for i in order[:n]]

    def extract(self, question: str, sentences: list[str]) -> tuple[str | None, float, int | None]:
        """Best valid span: (text or None for no-answer, confidence, index of the sentence it came from)."""
        text, starts = join_context(sentences)
        enc = encode_pair(self.tokenizer, question, text)
        feeds = {"input_ids": np.array([enc.ids], dtype=np.int64),
                 "attention_mask": np.array([enc.attention_mask], dtype=np.int64),
                 "token_type_ids": np.array([enc.type_ids], dtype=np.int64)}
        start_logits, end_logits = (o[0] for o in self.qa.run({k: feeds[k] for k in self.qa.input_names}))
        allowed = np.array(enc.is_context)
        allowed[0] = True  # [CLS] is the no-answer option
        p_start = _softmax(np.where(allowed, start_logits, -1e9))
        p_end = _softmax(np.where(allowed, end_logits, -1e9))
        context_idx = np.flatnonzero(enc.is_context)
        best, best_score = None, p_start[0] * p_end[0]
        top_starts = context_idx[np.argsort(-p_start[context_idx])[:20]]
        top_ends = context_idx[np.argsort(-p_end[context_idx])[:20]]
        for s in top_starts:
            for e in top_ends:
                if s <= e < s + MAX_ANSWER_TOKENS and p_start[s] * p_end[e] > best_score:
                    best, best_score = (int(s), int(e)), p_start[s] * p_end[e]
        if best is None:
            return None, float(best_score), None
        char_start, char_end = enc.offsets[best[0]][0], enc.offsets[best[1]][1]
        sentence = max(i for i, start in enumerate(starts) if start <= char_start)
        return text[char_start:char_end], float(best_score), sentence

    def _span(self, context: list[str], question: str) -> tuple[str | None, float, str | None, np.ndarray]:
        question = validate_question(question)
        question_vector = self.embed([question])[0]
        chosen = [context[i] for i in self.select(context, question, question_vector)] if context else []
        if not chosen:
            return None, 0.0, None, question_vector
        span, confidence, sentence = self.extract(question, chosen)
        return span, confidence, chosen[sentence] if sentence is not None else None, question_vector

    def raw_answer(self, context: list[str], question: str) -> tuple[str | None, float, str | None]:
        """The best span before the refusal threshold: (span or None, confidence, evidence sentence)."""
        span, confidence, evidence, _ = self._span(context, question)
        return span, confidence, evidence

    def answer(self, context: list[str], question: str) -> Answer:
        """Answer `question` from `context`, or refuse with suggestions when the model is not confident enough."""
        span, confidence, evidence, question_vector = self._span(context, question)
        if span is None or confidence < self.threshold:
            return Answer(REFUSAL, round(confidence, 4), None, self.suggestions(question_vector), answered=False)
        return Answer(span, round(confidence, 4), evidence)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
