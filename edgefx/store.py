"""In-memory store of explained verification results, bounded by a TTL and an LRU cap."""
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


class ExplanationStore:
    """Thread-safe map id -> explained result; entries expire after `ttl_s` and the oldest-used go first past `cap`."""

    def __init__(self, ttl_s: float, cap: int, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl_s <= 0 or cap <= 0:
            raise ValueError("explanation store needs a positive TTL and cap")
        self._ttl_s = float(ttl_s)
        self._cap = int(cap)
        self._clock = clock
        self._items: OrderedDict[str, StoredExplanation] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, result: Any) -> StoredExplanation:
        now = self._clock()
        # 128 random bits: ids are capabilities for the heatmaps, so they must not be guessable.
        entry = StoredExplanation(secrets.token_urlsafe(16), result, now, now + self._ttl_s)
        with self._lock:
            self._expire(now)
            self._items[entry.id] = entry
            while len(self._items) > self._cap:
                self._items.popitem(last=False)
        return entry

    def get(self, explanation_id: str) -> StoredExplanation | None:
        now = self._clock()
        with self._lock:
            self._expire(now)
            entry = self._items.get(explanation_id)
            if entry is not None:
                self._items.move_to_end(explanation_id)
            return entry

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def _expire(self, now: float) -> None:
        expired = [key for key, entry in self._items.items() if entry.expires <= now]
        for key in expired:
            del self._items[key]
