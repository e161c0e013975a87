"""The machine behind a benchmark's figures: CPU model, vector extensions, cores, thread settings."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import numpy as np

VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "neon", "asimd")


def machine() -> dict[str, Any]:
    """The CPU model, its vector extensions, cores, and the thread settings in force (figures depend on all)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model in ("", platform.machine(), platform.processor()):
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {"cpu": model, "vector_extensions": [f for f in VECTOR_FLAGS if f in flags], "cores": os.cpu_count(),
            "threads_env": {k: os.environ[k] for k in ("EDGEFX_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                       "MKL_NUM_THREADS") if k in os.environ},
            "numpy": np.__version__}
