"""What the sentence retriever sees: each fact sentence with its hint words, numbers masked, and the cue rules that
tell which photo, method and rank a question is about."""

from __future__ import annotations

import json
import re
from functools import lru_cache

import numpy as np

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
CACHE_SENTENCES = 4096  # sentence embeddings and retrieval words kept, by number-masked text
_STOPWORDS = frozenset(
    "a an the is was were are be been of in on at to for by with and or it its this that what which who how why "
    "did does do me my i you your please pls tell give show so can could would about from there".split())


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


def question_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOPWORDS}


@lru_cache(maxsize=CACHE_SENTENCES)
def retrieval_words(sentence: str) -> frozenset[str]:
    return frozenset(question_words(retrieval_text(sentence)))


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
