"""Question text as the intent model sees it: lower case, chat shorthand spelled out, domain words' typos fixed."""

from __future__ import annotations

import re
from collections.abc import Iterable

_SHORT = {"u": "you", "r": "are", "ur": "your", "wat": "what", "wats": "what's", "whats": "what's", "pls": "please",
          "plz": "please", "thx": "thanks", "didnt": "didn't", "doesnt": "doesn't", "isnt": "isn't", "wasnt": "wasn't",
          "cant": "can't", "dont": "don't", "im": "i'm", "y": "why", "hw": "how", "pic": "picture", "pics": "pictures",
          "img": "image", "imgs": "images", "pct": "percent"}


class Speller:
    """Fix typos of domain words ('treshold' -> 'threshold'): a word unknown to the tokenizer's whole-word vocab is
    replaced by the bank word at edit distance 1 (2 for words of 8+ letters), if exactly one is closest."""

    def __init__(self, vocab: set[str], domain: set[str]):
        self.vocab, self.domain = vocab, sorted(w for w in domain if len(w) >= 4)
        # Symmetric-delete index (as SymSpell): two words within edit distance k share a string left after at most k
        # deletions from each, so a lookup computes distances to a handful of candidates instead of every word.
        self.index: dict[str, set[str]] = {}
        for d in self.domain:
            for v in _deletions(d, 2):
                self.index.setdefault(v, set()).add(d)
        self.fixed: dict[str, str] = {}

    @staticmethod
    def _dist(a: str, b: str, cap: int) -> int:
        if abs(len(a) - len(b)) > cap:
            return cap + 1
        prev2, prev = None, list(range(len(b) + 1))
        for i in range(1, len(a) + 1):
            cur = [i] + [0] * len(b)
            for j in range(1, len(b) + 1):
                cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
                if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                    cur[j] = min(cur[j], prev2[j - 2] + 1)
            prev2, prev = prev, cur
        return prev[-1]

    def fix_word(self, w: str) -> str:
        if len(w) < 5 or w in self.vocab or not w.isalpha():
            return w
        if w not in self.fixed:
            self.fixed[w] = self._closest(w)  # a kiosk's vocabulary is small: remember each answer
        return self.fixed[w]

    def _closest(self, w: str) -> str:
        cap = 2 if len(w) >= 8 else 1
        candidates = sorted({d for v in _deletions(w, cap) for d in self.index.get(v, ())})
        best, cands = cap + 1, []
        for d in candidates:
            k = self._dist(w, d, cap)
            if k < best:
                best, cands = k, [d]
            elif k == best:
                cands.append(d)
        return cands[0] if best <= cap and len(cands) == 1 else w

    def __call__(self, q: str) -> str:
        return re.sub(r"[a-z]+", lambda m: self.fix_word(m.group(0)), q)


def shorthand(question: str) -> str:
    """Lower case, one space between words, typographic quotes made plain, chat shorthand spelled out."""
    q = question.strip().lower().replace("\u2019", "'").replace("\u2018", "'")
    q = re.sub(r"\s+", " ", q)
    return re.sub(r"[a-z']+", lambda m: _SHORT.get(m.group(0), m.group(0)), q)


def speller_for(vocabulary: Iterable[str], bank_texts: Iterable[str]) -> Speller:
    """A Speller that knows the tokenizer's whole words and corrects towards the words of the example banks."""
    texts = list(bank_texts)
    domain = {w for t in texts for w in re.findall(r"[a-z]+", t.lower())}
    return Speller({w for w in vocabulary if w.isalpha()} | domain, domain)


def _deletions(word: str, depth: int) -> set[str]:
    """The word and every string left after deleting up to `depth` of its letters."""
    level, out = {word}, {word}
    for _ in range(depth):
        level = {w[:i] + w[i + 1:] for w in level for i in range(len(w))}
        out |= level
    return out
