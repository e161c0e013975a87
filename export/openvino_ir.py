"""OpenVINO IR (.xml/.bin) from an ONNX model, full fp32 weights, with a parity check against onnxruntime."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np


_CONVERT = ("import sys, openvino as ov; "
            "ov.save_model(ov.convert_model(sys.argv[1]), sys.argv[2], compress_to_fp16=False)")


def convert(onnx_path: Path) -> tuple[Path, Path]:
    """Write <stem>.xml/.bin next to the ONNX file (no fp16 compression) and return their paths.

    Runs in a fresh interpreter: OpenVINO names unnamed nodes from a process-wide counter, so converting in a
    process that already converted other models would give other .xml bytes for the same model."""
    xml = onnx_path.with_suffix(".xml")
    result = subprocess.run([sys.executable, "-c", _CONVERT, str(onnx_path), str(xml)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"OpenVINO conversion of {onnx_path} failed:\n{result.stderr[-2000:]}")
    return xml, xml.with_suffix(".bin")


def _runners(onnx_path: Path, xml: Path, threads: int):  # type: ignore[no-untyped-def]
    import onnxruntime as ort
    import openvino as ov
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32",
                                                         "INFERENCE_NUM_THREADS": threads})
    name = session.get_inputs()[0].name
    outputs = [o.name for o in session.get_outputs()]

    def run_ort(batch: np.ndarray) -> list[np.ndarray]:
        return session.run(None, {name: batch})

    def run_ov(batch: np.ndarray) -> list[np.ndarray]:
        result = compiled(batch)
        return [result[compiled.output(o)] for o in outputs]

    return run_ort, run_ov


def max_abs_diff(onnx_path: Path, xml: Path, batches: list[np.ndarray], threads: int = 2) -> float:
    """Largest |OpenVINO - onnxruntime| over every output and batch."""
    run_ort, run_ov = _runners(onnx_path, xml, threads)
    worst = 0.0
    for batch in batches:
        for a, b in zip(run_ort(batch), run_ov(batch)):
            worst = max(worst, float(np.max(np.abs(a - b))))
    return worst


def min_cosine(onnx_path: Path, xml: Path, batch: np.ndarray, threads: int = 2) -> float:
    """Smallest per-row cosine between OpenVINO and onnxruntime outputs (for embedding models)."""
    run_ort, run_ov = _runners(onnx_path, xml, threads)
    a, b = run_ort(batch)[0], run_ov(batch)[0]
    cos = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(cos.min())
