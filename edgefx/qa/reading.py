"""The span reader: a distilled BERT (MiniLM) fine-tuned for extractive QA reads one fact sentence and points at
the value that answers the question; plus the tokenisation it was trained with and the question check."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from edgefx.runtime.errors import InvalidQuestion

MAX_QUESTION_CHARS = 1000
MAX_QUESTION_TOKENS = 40
MAX_SEQUENCE_TOKENS = 160
MAX_ANSWER_TOKENS = 40
# Bumped whenever encode_pair/join_context change: the trained weights depend on this exact encoding.
ENCODING_VERSION = 1
CLS_ID, SEP_ID = 101, 102


class Encoding(NamedTuple):
    """A tokenised (question, context) pair; offsets index into the joined context string."""

    ids: list[int]
    type_ids: list[int]
    attention_mask: list[int]
    offsets: list[tuple[int, int]]
    is_context: list[bool]


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


class SpanReader:
    """The exported `qa` model over one sentence at a time: the best span, P(span) and P(no answer)."""

    def __init__(self, model: Any, tokenizer: Any) -> None:
        self.qa, self.tokenizer = model, tokenizer

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
