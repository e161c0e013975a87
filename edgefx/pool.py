"""Bounded inference pool: a fixed number of worker threads and a bounded queue; refuses work when full."""
from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from edgefx.errors import Busy

T = TypeVar("T")


class InferencePool:
    """Runs blocking model calls on `workers` threads with at most `queue_size` more waiting; the rest get Busy."""

    def __init__(self, workers: int, queue_size: int) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError("the pool needs at least one worker and a non-negative queue size")
        self.workers = workers
        self.capacity = workers + queue_size
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="edgefx-infer")
        self._lock = threading.Lock()
        self._pending = 0
        self._mean_s = 0.5  # running estimate of one job's duration, for Retry-After
        self.rejected = 0

    @property
    def pending(self) -> int:
        """Jobs running or waiting."""
        with self._lock:
            return self._pending

    def retry_after_s(self) -> int:
        """Whole seconds until the queue has probably drained enough to take one more job."""
        with self._lock:
            backlog = self._pending
            mean = self._mean_s
        return max(1, min(60, math.ceil(backlog * mean / self.workers)))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Await `fn(*args)` on a worker thread, or raise Busy at once when the queue is full."""
        with self._lock:
            if self._pending >= self.capacity:
                self.rejected += 1
                full = True
            else:
                self._pending += 1
                full = False
        if full:
            raise Busy("the device is busy; retry shortly", retry_after=self.retry_after_s())
        # The slot is freed when the job really ends, not when the caller stops waiting (a client that
        # disconnects does not shorten the queue), so the bound holds for the threads too.
        future: Future[T] = self._executor.submit(self._timed, fn, *args)
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _timed(self, fn: Callable[..., T], *args: Any) -> T:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            elapsed = time.perf_counter() - start
            with self._lock:
                self._mean_s = 0.8 * self._mean_s + 0.2 * elapsed

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
