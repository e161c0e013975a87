"""One interface to run a built model on onnxruntime or OpenVINO (CPU, GPU, NPU or AUTO)."""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from edgefx.errors import ModelError
from edgefx.manifest import Manifest

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
AUTO_BACKEND = {"pnet": "onnxruntime", "rnet": "onnxruntime", "onet": "onnxruntime"}


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

    def __init__(self, name: str, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or os.cpu_count() or 1
        opts.inter_op_num_threads = 1
        # Spinning threads of several sessions fight over 2 cores (measured 2-3x slower).
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        self.name = name
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(self.output_names, feeds)


class OpenVinoModel:
    """A model compiled by OpenVINO for one device; one infer request per calling thread."""

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
        self.output_names = [p.get_any_name() for p in self.compiled.outputs]
        self._local = threading.local()

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = self.compiled.create_infer_request()
        request.infer(feeds)
        return [np.array(request.get_output_tensor(i).data, copy=True) for i in range(len(self.output_names))]


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
    from edgefx.config import default_models_dir

    manifest = Manifest(models_dir or default_models_dir())
    chosen = resolve_backend(backend, name)
    if chosen == "openvino" and not manifest.has(name, precision, "openvino"):
        if backend == "openvino":
            manifest.artifact(name, precision, "openvino")  # raises ModelMissing with the build hint
        chosen = "onnxruntime"
    if chosen == "openvino":
        xml, _bin = (a.verified_path(verify_hashes) for a in manifest.artifact(name, precision, "openvino"))
        return OpenVinoModel(name, xml, device=device, threads=threads)
    (onnx_art,) = manifest.artifact(name, precision, "onnx")
    return OnnxRuntimeModel(name, onnx_art.verified_path(verify_hashes), threads=threads)
