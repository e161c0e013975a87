"""Bounded inference pool: a fixed number of worker threads and a bounded queue; refuses work when full."""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from edgefx.runtime.errors import Busy

T = TypeVar("T")
# Cautious guesses until a kind of job has been timed once, so that a burst right after start cannot queue minutes.
FIRST_GUESS_S = {"verify": 1.0, "explain": 30.0}


class InferencePool:
    """Runs blocking model calls on `workers` threads. A job is refused (Busy, with a Retry-After estimate) when
    `workers + queue_size` jobs are already running or waiting, or when the work ahead of it would take longer
    than `max_wait_s` by the measured mean duration of each kind of job (an explanation costs ~100 verifications,
    so a count alone would let a queue of explanations keep clients waiting for minutes)."""

    def __init__(self, workers: int, queue_size: int, max_wait_s: float = 60.0) -> None:
        if workers < 1 or queue_size < 0 or max_wait_s <= 0:
            raise ValueError("the pool needs at least one worker, a non-negative queue size and a positive wait")
        self.workers = workers
        self.capacity = workers + queue_size
        self.max_wait_s = max_wait_s
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edgefx-infer")
        self._lock = threading.Lock()
        self._pending = 0
        self._pending_cost_s = 0.0
        self._mean_s: dict[str, float] = {}
        self.rejected = 0

    @property
    def pending(self) -> int:
        """Jobs running or waiting."""
        with self._lock:
            return self._pending

    def expected_s(self, kind: str) -> float:
        with self._lock:
            return self._mean_s.get(kind, FIRST_GUESS_S.get(kind, 0.05))

    def wait_ahead_s(self) -> float:
        """Seconds of work already accepted, spread over the workers."""
        with self._lock:
            return self._pending_cost_s / self.workers

    async def run(self, fn: Callable[..., T], *args: Any, kind: str = "light") -> T:
        """Await `fn(*args)` on a worker thread, or raise Busy at once when the pool cannot take it."""
        cost = self.expected_s(kind)
        with self._lock:
            ahead = self._pending_cost_s / self.workers
            # A job always gets in when nothing is running, however slow its kind has been.
            full = self._pending >= self.capacity or (self._pending > 0 and ahead + cost > self.max_wait_s)
            if full:
                self.rejected += 1
            else:
                self._pending += 1
                self._pending_cost_s += cost
        if full:
            retry = max(1, min(300, math.ceil(ahead)))
            raise Busy(f"the device is busy (about {ahead:.0f} s of work queued); retry shortly", retry_after=retry)
        # The slot is freed when the job really ends, not when the caller stops waiting (a client that
        # disconnects does not shorten the queue), so the bound holds for the threads too.
        future: Future[T] = self._executor.submit(self._timed, kind, fn, *args)
        future.add_done_callback(lambda _: self._release(cost))
        return await asyncio.wrap_future(future)

    def _timed(self, kind: str, fn: Callable[..., T], *args: Any) -> T:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                previous = self._mean_s.get(kind)
                self._mean_s[kind] = elapsed if previous is None else 0.8 * previous + 0.2 * elapsed

    def _release(self, cost: float) -> None:
        with self._lock:
            self._pending -= 1
            self._pending_cost_s = max(0.0, self._pending_cost_s - cost)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
