"""Answer questions about one verification result: pick relevant sentences, extract a span, or refuse honestly."""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edgefx.errors import InvalidQuestion

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
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
CACHE_SENTENCES = 4096
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


# What each kind of context sentence answers, in the words people ask with. Added to the sentence for retrieval only
# (embedding and word overlap); the reader and the evidence see the sentence itself. (It replaced a query-side
# thesaurus of everyday words that, once these hints existed, changed no dev-set answer: 68.75 % correct either way.)
_SENTENCE_HINTS = [(re.compile(pattern), hint) for pattern, hint in (
    (r"^The decision is", "decision result outcome verdict: match or not, same person, recognised, accepted or "
                          "rejected, verified, pass or fail, succeed, yes or no"),
    (r"^The similarity score", "similarity score number value: how similar, how close the faces"),
    (r"^The decision threshold", "threshold cutoff minimum needed required to pass, limit to reach"),
    (r"^The score is .* the threshold\.$", "margin gap difference: how far, how close, by how much above or below, "
                                          "over or under, missed or cleared"),
    (r"because the score", "why reason explain cause: how come, why accepted or rejected, "
                           "why that result"),
    (r"^The PIC confidence", "confidence certainty: how sure, how certain, how reliable, trust, percent"),
    (r"^A PIC confidence of", "meaning of the confidence: what does PIC mean, interpret, represent"),
    (r"pixels wide\.$", "face size: how big, how large, width in pixels, resolution"),
    (r"^The face detector confidence", "detector confidence detection score: how sure the face found"),
    (r"contains .* faces?\.$", "other faces: how many people, anyone else, more faces"),
    (r"^The face recognition model", "recognition model network: which model compared the faces"),
    (r"^The face detector is", "detector: which face detector, how the faces are found"),
    (r"^The models run with", "runtime backend device precision hardware"),
    (r"took .* ms", "time duration: how long, how fast, how slow, milliseconds"),
    (r"^Left and right", "left right side convention: whose left, mirrored, viewer or subject"),
    (r"most important region", "most important top first key main biggest region: what mattered most"),
    (r"second most important", "second runner-up next region: what came second"),
    (r"least important", "least important lowest last bottom region: what mattered least"),
    (r"average importance of", "importance share weight percentage of this region: how much it mattered"),
    (r"methods agree that", "agreement: do the methods agree, consensus, votes on the top region"),
    (r"Kendall tau", "agreement correlation: how well the method rankings agree, consistency"),
    (r"^(Single|Greedy) (removal|aggregation) \(|^The average method",
     "method meaning: what does this method do, how it works, definition"),
)]


def sentence_hint(sentence: str) -> str:
    """Question words for the kind of fact `sentence` states ("" when none)."""
    return " ".join(hint for pattern, hint in _SENTENCE_HINTS if pattern.search(sentence))


def retrieval_text(sentence: str) -> str:
    """The sentence as retrieval sees it: its hint words first, so it is found by the questions it answers."""
    hint = sentence_hint(sentence)
    return f"{hint}. {sentence}" if hint else sentence


@lru_cache(maxsize=CACHE_SENTENCES)
def retrieval_key(sentence: str) -> str:
    """What the sentence model embeds for a context sentence: numbers masked (so that one vector serves every result
    with that kind of fact, and the sentence model was trained on exactly this), hint words first."""
    return retrieval_text(_NUMBER.sub("N", sentence))


def retrieval_signature() -> str:
    """Everything `retrieval_key` depends on, for the hash of the trained sentence model."""
    return json.dumps([_NUMBER.pattern, [(pattern.pattern, hint) for pattern, hint in _SENTENCE_HINTS]])


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS}


@lru_cache(maxsize=CACHE_SENTENCES)
def _retrieval_words(sentence: str) -> frozenset[str]:
    return frozenset(_words(retrieval_text(sentence)))


_PHOTO_WORDS = r"(photo|image|picture|pic|face|one)"
_PHOTO_PATTERNS = {
    "A": re.compile(rf"\b(first|1st) {_PHOTO_WORDS}|\b{_PHOTO_WORDS} (a|1|one)\b"),
    "B": re.compile(rf"\b(second|2nd) {_PHOTO_WORDS}|\b{_PHOTO_WORDS} (b|2|two)\b"),
}
_METHOD_PATTERNS = {
    "S-": re.compile(r"single[ -]removal|\bs-"), "G-": re.compile(r"greedy[ -]removal|\bg-"),
    "S+": re.compile(r"single[ -]aggregation|\bs\+"), "G+": re.compile(r"greedy[ -]aggregation|\bg\+"),
    "Avg": re.compile(r"\baverage|\bavg\b"),
}
# Which rank a question asks for, tried in this order once the photo it names is cut out of it ("the second
# photo" names a photo, not a rank): second, least, most.
_RANK_PATTERNS = (
    ("second", re.compile(r"\b(second|2nd|runner[- ]?up|next)\b")),
    ("least", re.compile(r"\b(least|lowest|last|bottom|smallest|weakest|minimum|unimportant|less)\b")),
    ("most", re.compile(r"\b(most|mostly|top|biggest|main|mainly|key|highest|strongest|first|primary|best|"
                        r"largest|number one|greatest)\b")),
)
_SENTENCE_RANKS = (("second", "second most important region"), ("least", "least important region"),
                   ("most", "the most important region"))
_REGIONS = ("forehead", "left eyebrow", "right eyebrow", "left eye", "right eye", "nose", "left cheek",
            "right cheek", "mouth", "chin")


@lru_cache(maxsize=CACHE_SENTENCES)
def _sentence_cues(sentence: str) -> tuple[frozenset[str], frozenset[str], str | None, str]:
    """The photos, methods and rank a context sentence is about, and its lower-cased text padded with spaces."""
    photos = frozenset(p for p in "AB" if f"({p})" in sentence)
    methods = frozenset(m for m in _METHOD_PATTERNS if f"({m})" in sentence)
    rank = next((name for name, words in _SENTENCE_RANKS if words in sentence), None)
    return photos, methods, rank, f" {sentence.lower()} "


def focus_scores(question: str, context: list[str]) -> np.ndarray:
    """Raise sentences about the photo, method and region the question names; lower those about another one.

    Sentence embeddings barely tell "photo A by S-" from "photo B by G+"; the question's own words do.
    """
    q = question.lower()
    photos = {p for p, pattern in _PHOTO_PATTERNS.items() if pattern.search(q)}
    methods = {m for m, pattern in _METHOD_PATTERNS.items() if pattern.search(q)}
    regions = {r for r in _REGIONS if re.search(rf"\b{r}", q)}
    regions -= {r for r in regions if any(r != o and r in o for o in regions)}
    unnamed = q
    for pattern in _PHOTO_PATTERNS.values():
        unnamed = pattern.sub(" ", unnamed)
    rank = next((name for name, pattern in _RANK_PATTERNS if pattern.search(unnamed)), None)
    scores = np.zeros(len(context), dtype=np.float32)
    for i, sentence in enumerate(context):
        s_photos, s_methods, s_rank, padded = _sentence_cues(sentence)
        if photos and s_photos:
            scores[i] += 0.1 if photos & s_photos else -0.1
        if methods and s_methods:
            scores[i] += 0.1 if methods & s_methods else -0.1
        elif s_methods == {"Avg"}:
            scores[i] += 0.1  # no method named: the average is the default answer
        if regions and any(f" {r} " in padded for r in regions):
            scores[i] += 0.1
        if rank and s_rank:
            scores[i] += 0.1 if rank == s_rank else -0.1
    return scores


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
        from edgefx.backend import load_model
        from edgefx.config import default_models_dir

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
        q_words = _words(question)
        overlap = np.array([len(q_words & _retrieval_words(s)) for s in context], dtype=np.float32)
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
