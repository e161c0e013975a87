"""Test helpers: run an ASGI app with uvicorn on a free loopback port in a thread; load the real engine or skip."""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from edgefx.runtime.config import Settings, default_lfw_dir
from edgefx.evaluation.lfw import lfw_image_root, read_pairs


@contextlib.contextmanager
def serving(app: Any, *, startup_timeout_s: float = 30.0) -> Iterator[str]:
    """Serve `app` over real HTTP on 127.0.0.1:<free port>; yields the base URL; stops the server on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_keep_alive=5)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout_s
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def lfw_dir() -> Path:
    return default_lfw_dir()


def lfw_pairs(limit: int = 5) -> tuple[list[tuple[Path, Path]], list[tuple[Path, Path]]]:
    """The first `limit` matched and mismatched pairs of pairsDevTest.txt."""
    pairs = read_pairs(lfw_dir() / "pairsDevTest.txt")
    root = lfw_image_root(lfw_dir())

    def paths(genuine: bool) -> list[tuple[Path, Path]]:
        return [(root / p.path_a, root / p.path_b) for p in pairs if p.genuine == genuine][:limit]

    return paths(True), paths(False)


def require_lfw() -> None:
    if not (lfw_dir() / "pairsDevTest.txt").is_file():
        pytest.skip(f"LFW is not at {lfw_dir()} (set EDGEFX_LFW)")


def real_engine(**overrides: Any) -> Any:
    """The real Engine on the built models, or a skip that says what is missing."""
    from edgefx.runtime.errors import ModelError

    try:
        from edgefx.engine import Engine
    except ImportError as exc:
        pytest.skip(f"edgefx.engine is not importable yet: {exc}")
    settings = Settings.from_env(**overrides)
    try:
        return Engine(settings)
    except ModelError as exc:
        pytest.skip(f"models are not built ({exc.code}: {exc.message}); run `make models`")
