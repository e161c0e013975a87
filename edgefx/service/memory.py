"""Keeping the service's resident memory at its working set: heap trimming, one malloc arena, model buffers freed."""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from typing import Any


def give_back_memory(engine: Any) -> None:
    """After a rare, large job (an explanation: ~100 MB of SFace batches and occlusion maps, measured by `edgefx
    bench serve`), free the model buffers sized for it and return the freed heap to the system, so that the
    service's resident memory goes back to its verification working set instead of keeping the peak."""
    release = getattr(engine, "release_memory", None)
    if release is not None:
        release()
    trim_heap()


def then_trim_heap(render: Callable[[], bytes]) -> Callable[[], bytes]:
    """`render`, then trim_heap: a figure's drawing buffers (~10 MB for the summary) are not kept once its PNG is made."""

    def call() -> bytes:
        try:
            return render()
        finally:
            trim_heap()

    return call


def trim_heap() -> bool:
    """glibc's malloc_trim(0): give free heap pages back to the system; False when not glibc."""
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False


M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """Have every thread allocate from the same glibc malloc arena; False when not applied.

    glibc gives each thread that allocates while others do its own arena, which keeps its freed memory: the
    server's request threads (event loop, inference worker, the engine's second-photo thread) each grew one of
    6-8 MB on their first requests (`edgefx bench serve`, /proc/PID/smaps), after the warm-up on the main
    thread had already sized the main heap. With one arena, requests reuse what the warm-up allocated. Must run
    before the threads start; a MALLOC_ARENA_MAX in the environment (the operator's choice) is left alone."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False  # not glibc
    return bool(mallopt(M_ARENA_MAX, arenas))
