"""The backend layer: hash-checked loading, clear errors, device fallback, onnxruntime/OpenVINO parity."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgefx.runtime.backend import load_model, resolve_backend
from edgefx.runtime.config import default_models_dir
from edgefx.runtime.errors import ModelHashMismatch, ModelMissing
from edgefx.runtime.manifest import Manifest


@pytest.fixture()
def models_copy(tmp_path: Path) -> Path:
    """A models/ folder with the manifest and SFace fp32 ONNX copied (so they can be damaged)."""
    src = default_models_dir()
    dst = tmp_path / "models"
    (dst / "sface").mkdir(parents=True)
    shutil.copy(src / "manifest.json", dst / "manifest.json")
    shutil.copy(src / "sface" / "fp32.onnx", dst / "sface" / "fp32.onnx")
    return dst


def test_tampered_artifact_is_refused(models_copy: Path) -> None:
    path = models_copy / "sface" / "fp32.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelHashMismatch) as err:
        load_model("sface", "fp32", backend="onnxruntime", models_dir=models_copy)
    assert "sha256" in err.value.message and "export" in err.value.message


def test_missing_artifact_names_the_build_command(models_copy: Path) -> None:
    (models_copy / "sface" / "fp32.onnx").unlink()
    with pytest.raises(ModelMissing) as err:
        load_model("sface", "fp32", backend="onnxruntime", models_dir=models_copy)
    assert "make models" in err.value.message


def test_missing_manifest_names_the_build_command(tmp_path: Path) -> None:
    with pytest.raises(ModelMissing) as err:
        Manifest(tmp_path)
    assert "make models" in err.value.message


def test_absent_openvino_device_falls_back_to_cpu(caplog: pytest.LogCaptureFixture) -> None:
    if resolve_backend("auto") != "openvino":
        pytest.skip("openvino is not installed in this environment: nothing to fall back from")
    model = load_model("sface", "fp32", backend="openvino", device="NPU", threads=1)
    import openvino as ov

    if any(d.startswith("NPU") for d in ov.Core().available_devices):
        assert model.device == "NPU"
    else:
        assert model.device == "CPU" and "falling back to CPU" in caplog.text


def test_backends_agree_on_real_faces(engine, matched_pair_bytes) -> None:  # type: ignore[no-untyped-def]
    """The same aligned LFW faces through onnxruntime and OpenVINO give the same embeddings."""
    a = engine.prepare(matched_pair_bytes[0], "a", {})
    b = engine.prepare(matched_pair_bytes[1], "b", {})
    batch = np.ascontiguousarray(np.stack([a.crop, b.crop]).transpose(0, 3, 1, 2), np.float32)
    outs = {}
    for backend in ("onnxruntime", "openvino"):
        m = load_model("sface", "fp32", backend=backend, threads=1)
        outs[backend] = m.run({m.input_names[0]: batch})[0]
    cos = np.sum(outs["onnxruntime"] * outs["openvino"], axis=1) / (
        np.linalg.norm(outs["onnxruntime"], axis=1) * np.linalg.norm(outs["openvino"], axis=1))
    assert cos.min() > 0.9999


def test_models_command_lists_every_artifact_ok() -> None:
    out = subprocess.run([sys.executable, "-m", "edgefx.cli", "models", "--json"], capture_output=True, text=True,
                         timeout=300)
    report = json.loads(out.stdout)
    assert out.returncode == 0 and report["all_ok"], [r for r in report["artifacts"] if r["status"] != "ok"]
    names = {r["model"] for r in report["artifacts"]}
    assert {"pnet/fp32", "rnet/fp32", "onet/fp32", "sface/fp32", "sface/int8"} <= names
