"""In-memory store of explained verification results, bounded by a TTL, an LRU count cap and a byte budget."""
from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class StoredExplanation:
    """One explained result; `result` is the engine's VerifyResult (images stay in RAM only)."""

    id: str
    result: Any
    created: float
    expires: float
    size: int = 0


class ExplanationStore:
    """Thread-safe map id -> explained result. Entries expire after `ttl_s`; past `cap` entries or `max_bytes`
    (as measured by `weigh`, re-measured on each use since results cache their PNGs) the least recently used go
    first. The newest entry always stays, so a fresh id is usable even when it alone is over the budget."""

    def __init__(self, ttl_s: float, cap: int, clock: Callable[[], float] = time.monotonic,
                 max_bytes: int | None = None, weigh: Callable[[Any], int] | None = None) -> None:
        if ttl_s <= 0 or cap <= 0:
            raise ValueError("explanation store needs a positive TTL and cap")
        self._ttl_s = float(ttl_s)
        self._cap = int(cap)
        self._max_bytes = max_bytes
        self._weigh = weigh or (lambda _: 0)
        self._clock = clock
        self._items: OrderedDict[str, StoredExplanation] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, result: Any) -> StoredExplanation:
        now = self._clock()
        # 128 random bits: ids are capabilities for the heatmaps, so they must not be guessable.
        entry = StoredExplanation(secrets.token_urlsafe(16), result, now, now + self._ttl_s, self._weigh(result))
        with self._lock:
            self._expire(now)
            self._items[entry.id] = entry
            self._evict()
        return entry

    def get(self, explanation_id: str) -> StoredExplanation | None:
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._items.get(explanation_id)
            if entry is not None:
                self._items.move_to_end(explanation_id)
        return entry

    def touch(self, entry: StoredExplanation) -> None:
        """Re-measure an entry after it grew (e.g. rendered a PNG) and evict others if the budget is exceeded."""
        size = self._weigh(entry.result)
        with self._lock:
            entry.size = size
            self._evict()

    @property
    def bytes(self) -> int:
        with self._lock:
            return sum(e.size for e in self._items.values())

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def _evict(self) -> None:
        while len(self._items) > self._cap:
            self._items.popitem(last=False)
        if self._max_bytes is not None:
            total = sum(e.size for e in self._items.values())
            while total > self._max_bytes and len(self._items) > 1:
                _, oldest = self._items.popitem(last=False)
                total -= oldest.size

    def _expire(self, now: float) -> None:
        expired = [key for key, entry in self._items.items() if entry.expires <= now]
        for key in expired:
            del self._items[key]
