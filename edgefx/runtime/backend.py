"""One interface to run a built model on onnxruntime or OpenVINO (CPU, GPU, NPU or AUTO)."""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from edgefx.runtime.errors import ModelError
from edgefx.runtime.manifest import Manifest

log = logging.getLogger(__name__)

BACKENDS = ("onnxruntime", "openvino")
DEVICES = ("CPU", "GPU", "NPU", "AUTO")


class Model(Protocol):
    """A loaded model: feed named arrays, get the outputs in `output_names` order."""

    name: str
    backend: str
    device: str
    input_names: list[str]
    output_names: list[str]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


# `auto` per model, from `edgefx bench backends` on the 2-core machine: OpenVINO runs SFace about 2x faster than
# onnxruntime, but MTCNN's P-Net sees a new input shape at every pyramid scale, which OpenVINO pays for on each
# call, so the small cascade nets stay on onnxruntime.
AUTO_BACKEND = {"pnet": "onnxruntime", "rnet": "onnxruntime", "onet": "onnxruntime", "yunet": "onnxruntime"}
# onnxruntime keeps a CPU arena and a memory plan per input shape it has seen, and never gives them back. P-Net sees
# a new shape at every pyramid level of every photo size, so it allocates per run instead. R-Net and O-Net get one
# batch per photo, sized by its candidate count: they run in fixed-size chunks, so they see one shape, whose buffers
# the engine's warm-up makes at load. Measured (`edgefx bench serve`): without this, the server grew ~60 MB over its
# first 100 requests. Chunk sizes: beyond them the cost per row stays flat, so padding the last chunk costs little.
VARYING_SHAPE_MODELS = frozenset({"pnet", "yunet"})  # YuNet takes each photo at its own (padded) size
FIXED_BATCH = {"rnet": 8, "onet": 2}


def resolve_backend(backend: str, model: str | None = None) -> str:
    """The backend to use: `auto` picks the measured-faster one for `model` among those installed."""
    if backend == "auto":
        if not openvino_available():
            return "onnxruntime"
        return AUTO_BACKEND.get(model or "", "openvino")
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of auto, {', '.join(BACKENDS)}")
    if backend == "openvino" and not openvino_available():
        raise ModelError("backend openvino requested but the openvino package is not installed")
    return backend


class OnnxRuntimeModel:
    """A model on an onnxruntime CPU session."""

    backend = "onnxruntime"
    device = "CPU"

    def __init__(self, name: str, path: Path, threads: int | None = None, varying_shapes: bool = False) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        # Spinning threads of several sessions fight over 2 cores (measured 2-3x slower).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        if varying_shapes:
            opts.enable_cpu_mem_arena = False
            opts.enable_mem_pattern = False
        self.name = name
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, feeds)


class FixedBatchModel:
    """A single-input model run on batches of exactly `batch` rows (the last one zero-padded), so that the runtime
    sees one input shape whatever the number of rows."""

    def __init__(self, model: Model, batch: int) -> None:
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self.model = model
        self.batch = batch
        self.name, self.backend, self.device = model.name, model.backend, model.device
        self.input_names, self.output_names = model.input_names, model.output_names

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        if len(feeds) != 1:
            raise ValueError(f"{self.name}: fixed-batch runs take one input, got {sorted(feeds)}")
        ((key, rows),) = feeds.items()
        chunk = np.zeros((self.batch, *rows.shape[1:]), rows.dtype)
        parts: list[list[np.ndarray]] = []
        for start in range(0, max(len(rows), 1), self.batch):  # an empty input still gives typed, empty outputs
            piece = rows[start : start + self.batch]
            chunk[: len(piece)] = piece
            chunk[len(piece) :] = 0
            parts.append([out[: len(piece)] for out in self.model.run({key: chunk})])
        return [np.concatenate([part[i] for part in parts]) for i in range(len(parts[0]))]


class OpenVinoModel:
    """A model compiled by OpenVINO for one device; infer requests are pooled across calling threads."""

    backend = "openvino"

    def __init__(self, name: str, xml: Path, device: str = "CPU", threads: int | None = None) -> None:
        core = _ov_core()
        device = device.upper()
        if device not in DEVICES:
            raise ValueError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
        if device not in ("CPU", "AUTO") and not any(d.startswith(device) for d in core.available_devices):
            log.warning("OpenVINO device %s is not available (have %s); falling back to CPU",
                        device, ", ".join(core.available_devices))
            device = "CPU"
        config: dict[str, object] = {"PERFORMANCE_HINT": "LATENCY"}
        if threads and device == "CPU":
            config["INFERENCE_NUM_THREADS"] = int(threads)
        model = core.read_model(str(xml))
        self.name = name
        self.device = device
        self.compiled = core.compile_model(model, device, config)
        self.input_names = [p.get_any_name() for p in self.compiled.inputs]
        self.output_names = [_readable_name(p) for p in self.compiled.outputs]
        # Idle infer requests, reused by whichever thread runs next: a request holds its own buffers, so one per
        # thread would leave the warm-up's request (made on the loading thread) unused and grow the server when
        # its worker threads make theirs. A second one is only made while two threads infer at once.
        self._idle: list[object] = []
        self._running = 0
        self._lock = threading.Lock()

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        with self._lock:
            request = self._idle.pop() if self._idle else None
            self._running += 1
        try:
            if request is None:
                request = self.compiled.create_infer_request()
            request.infer(feeds)
            return [np.array(request.get_output_tensor(i).data, copy=True) for i in range(len(self.output_names))]
        finally:
            with self._lock:
                self._running -= 1
                if request is not None:
                    self._idle.append(request)

    def release_memory(self) -> bool:
        """Free the intermediate buffers, which OpenVINO sizes for the largest input seen (SFace: +145 MB at batch 16
        over batch 2) and keeps; the next run makes them again for its own input. False while a run is in progress."""
        with self._lock:  # no run starts while the buffers go
            if self._running:
                return False
            self.compiled.release_memory()
            return True


def _readable_name(port) -> str:  # type: ignore[no-untyped-def]
    """The ONNX name of a port: OpenVINO may list a numbered internal tensor name first (YuNet's "291" for "cls_8")."""
    name = port.get_any_name()
    if name.isdigit():
        return min((n for n in port.get_names() if not n.isdigit()), default=name)
    return name


_core = None
_core_lock = threading.Lock()


def _ov_core():  # type: ignore[no-untyped-def]
    global _core
    with _core_lock:
        if _core is None:
            import openvino as ov

            _core = ov.Core()
        return _core


def load_model(
    name: str,
    precision: str = "fp32",
    backend: str = "auto",
    device: str = "CPU",
    threads: int | None = None,
    models_dir: Path | None = None,
    verify_hashes: bool = True,
) -> Model:
    """Load `name/precision` from the manifest, hash-checked, on the chosen backend."""
    from edgefx.runtime.config import default_models_dir

    manifest = Manifest(models_dir or default_models_dir())
    chosen = resolve_backend(backend, name)
    if chosen == "openvino" and not manifest.has(name, precision, "openvino"):
        if backend == "openvino":
            manifest.artifact(name, precision, "openvino")  # raises ModelMissing with the build hint
        chosen = "onnxruntime"
    if chosen == "openvino":
        xml, _bin = (a.verified_path(verify_hashes) for a in manifest.artifact(name, precision, "openvino"))
        model: Model = OpenVinoModel(name, xml, device=device, threads=threads)
    else:
        (onnx_art,) = manifest.artifact(name, precision, "onnx")
        model = OnnxRuntimeModel(name, onnx_art.verified_path(verify_hashes), threads=threads,
                                 varying_shapes=name in VARYING_SHAPE_MODELS)
    return FixedBatchModel(model, FIXED_BATCH[name]) if name in FIXED_BATCH else model
