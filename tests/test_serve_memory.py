"""The server's memory stays flat after ready: fixed R-/O-Net batch shapes, pooled OpenVINO requests, one malloc arena."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from edgefx.runtime.backend import FIXED_BATCH, FixedBatchModel, load_model
from edgefx.service.memory import trim_heap


class RecordingNet:
    """A fake two-output net: row sums and row maxima; records every batch shape it is given."""

    name, backend, device = "fake", "fake", "CPU"
    input_names = ["x"]
    output_names = ["sum", "max"]

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feeds["x"]
        self.shapes.append(x.shape)
        flat = x.reshape(len(x), -1)
        return [flat.sum(axis=1, keepdims=True), flat.max(axis=1, keepdims=True)]


@pytest.mark.parametrize("rows", [0, 1, 7, 8, 9, 20])
def test_fixed_batch_sees_one_shape_and_returns_every_row(rows: int) -> None:
    net = RecordingNet()
    x = np.random.default_rng(rows).random((rows, 3, 4, 4)).astype(np.float32)
    sums, maxima = FixedBatchModel(net, 8).run({"x": x})
    assert {shape for shape in net.shapes} == {(8, 3, 4, 4)}
    assert len(net.shapes) == max(1, -(-rows // 8))
    np.testing.assert_allclose(sums[:, 0], x.reshape(rows, 48).sum(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(maxima[:, 0], x.reshape(rows, 48).max(axis=1) if rows else np.zeros(0))
    assert sums.shape == (rows, 1) and maxima.dtype == np.float32


def test_fixed_batch_refuses_several_inputs() -> None:
    with pytest.raises(ValueError):
        FixedBatchModel(RecordingNet(), 4).run({"x": np.zeros((1, 1)), "y": np.zeros((1, 1))})


@pytest.mark.parametrize("name,size", [("rnet", 24), ("onet", 48)])
def test_fixed_batch_cascade_nets_match_one_big_batch(name: str, size: int) -> None:
    """Chunked and padded, R-/O-Net give what one batch of all rows gives (padding rows do not leak in)."""
    chunked = load_model(name, backend="onnxruntime", threads=1)
    assert isinstance(chunked, FixedBatchModel) and chunked.batch == FIXED_BATCH[name]
    rows = np.random.default_rng(1).uniform(0, 255, (2 * chunked.batch + 3, 3, size, size)).astype(np.float32)
    feeds = {chunked.input_names[0]: rows}
    for got, want in zip(chunked.run(feeds), chunked.model.run(feeds)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _arena_check(env: dict[str, str]) -> str:
    code = "from edgefx.service.memory import limit_malloc_arenas; print(limit_malloc_arenas())"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc arenas")
def test_malloc_arenas_limited_unless_the_operator_chose() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    assert _arena_check(env) == "True"
    assert _arena_check({**env, "MALLOC_ARENA_MAX": "4"}) == "False"


def _rss_mb() -> float:
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_openvino_buffers_of_a_large_batch_are_given_back() -> None:
    """An explanation's SFace batch of 16 leaves OpenVINO buffers far larger than a verification's batch of 2;
    release_memory (and a heap trim, as the server does after an explanation) frees them; answers stay the same."""
    pytest.importorskip("openvino")
    sface = load_model("sface", backend="openvino", threads=1)
    pair = np.random.default_rng(0).uniform(0, 255, (2, 3, 112, 112)).astype(np.float32)
    (before,) = sface.run({sface.input_names[0]: pair})
    sface.run({sface.input_names[0]: np.zeros((16, 3, 112, 112), np.float32)})
    grown = _rss_mb()
    assert sface.release_memory()  # type: ignore[attr-defined]
    trim_heap()
    assert grown - _rss_mb() > 50
    (after,) = sface.run({sface.input_names[0]: pair})
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_openvino_release_waits_for_running_inference() -> None:
    from edgefx.runtime.backend import OpenVinoModel

    class Compiled:
        released = 0

        def release_memory(self) -> None:
            self.released += 1

    model = OpenVinoModel.__new__(OpenVinoModel)
    model.compiled, model._running, model._idle = Compiled(), 1, []
    model._lock = __import__("threading").Lock()
    assert not model.release_memory() and model.compiled.released == 0
    model._running = 0
    assert model.release_memory() and model.compiled.released == 1
