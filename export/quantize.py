"""Static QDQ int8 (per-channel) with onnxruntime.quantization, rebuildable from a tracked activation-range table."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path

import numpy as np

from export.faces import Cascade, align, main_face

# Per model: which layers stay fp32 and whether weights use 7 bits (reduce_range). Chosen on held-out LFW faces
# (int8-vs-fp32 embedding cosine / cascade landmark shift): the first layers see the widest activation ranges and
# lose most when quantized; once they are fp32, full 8-bit weights beat 7-bit ones (SFace mean cosine 0.987 with
# everything int8 and 7-bit weights -> 0.993 with conv_1 and conv_2_dw fp32 and 8-bit weights).
SETTINGS: dict[str, dict[str, object]] = {
    "pnet": {"nodes_kept_fp32": ["/net/conv1/Conv"], "reduce_range": False},
    "rnet": {"nodes_kept_fp32": ["/net/conv1/Conv"], "reduce_range": False},
    "onet": {"nodes_kept_fp32": ["/net/conv1/Conv"], "reduce_range": False},
    "sface": {"nodes_kept_fp32": ["conv_1_conv2d", "conv_2_dw_conv2d"], "reduce_range": False},
    # MobileFaceNet: all int8 gives mean cosine 0.933 (min 0.843) on 100 held-out faces; the 7x7 global depthwise
    # conv is the most sensitive layer (alone fp32 with the first two: mean 0.979). Also keeping the first block and
    # the 1x1 conv before it fp32: mean 0.989, min 0.975; both are cheap (7x7 maps and the stem's few channels).
    "arcface": {"nodes_kept_fp32": [f"MobileFaceNet/MobileFaceNet/{n}/BatchNorm/FusedBatchNorm" for n in (
        "Conv2d_0", "SeparableConv2d", "Conv", "Conv2d_2_InvResBlock_0/Conv", "Conv2d_2_InvResBlock_0/SeparableConv2d",
        "Conv2d_2_InvResBlock_0/Conv_1", "Conv2d_7")]
        + ["MobileFaceNet/Logits/SeparableConv2d/BatchNorm/FusedBatchNorm"], "reduce_range": False},
}
METHOD = ("onnxruntime.quantization.quantize_static: QDQ, per-channel weights QInt8, activations QUInt8, "
          "MinMax calibration")


class NoCalibration(RuntimeError):
    """Neither calibration photos nor a stored range table: int8 cannot be built honestly."""


@dataclass
class CalibrationSet:
    """What the fp32 cascade feeds each net on the calibration photos, plus the aligned faces SFace sees."""

    inputs: dict[str, list[np.ndarray]] = field(default_factory=lambda: {"pnet": [], "rnet": [], "onet": []})
    faces: list[np.ndarray] = field(default_factory=list)
    photos: int = 0
    origin: str = ""

    def record(self, name: str, batch: np.ndarray) -> None:
        self.inputs[name].append(batch.copy())

    def batches(self, name: str, size: int = 64) -> list[np.ndarray]:
        """Calibration batches for one model (P-Net keeps one pyramid level per batch: sizes differ)."""
        if name == "pnet":
            return self.inputs["pnet"]
        stacked = np.concatenate(self.faces if name in ("sface", "arcface") else self.inputs[name])
        return [stacked[i:i + size] for i in range(0, len(stacked), size)]

    def count(self, name: str) -> int:
        return len(self.faces) if name in ("sface", "arcface") else sum(len(b) for b in self.inputs[name])


def collect(cascade: Cascade, photos: list[Path]) -> CalibrationSet:
    from export.lfw import load_rgb
    found = CalibrationSet(photos=len(photos))
    for path in photos:
        image = load_rgb(path)
        marks = main_face(*cascade.detect(image, record=found.record))
        if marks is not None:
            found.faces.append(align(image, marks).transpose(2, 0, 1)[None].astype(np.float32))
    return found


class _Reader:
    """onnxruntime CalibrationDataReader over in-memory batches."""

    def __init__(self, input_name: str, batches: list[np.ndarray]) -> None:
        self.feeds = iter([{input_name: b} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.feeds, None)


def quantize(fp32: Path, int8: Path, ranges: Path, batches: list[np.ndarray] | None,
             nodes_to_exclude: list[str] | None = None, reduce_range: bool = False) -> str:
    """Write int8 from fp32. With `batches`, calibrate and (re)write the range table first; without, use the
    stored table. The int8 model is always made from the table, so both routes give the same bytes."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    input_name = onnx.load(str(fp32), load_external_data=False).graph.input[0].name
    if batches is not None:
        ranges.parent.mkdir(parents=True, exist_ok=True)
        ranges.unlink(missing_ok=True)
        route = "calibrated"
    elif ranges.is_file():
        route = "from table"
    else:
        raise NoCalibration(f"no calibration photos and no range table at {ranges}")
    kwargs = dict(quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=reduce_range,
                  activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                  calibrate_method=CalibrationMethod.MinMax, nodes_to_exclude=nodes_to_exclude or [],
                  calibration_cache_path=ranges)
    if batches is not None:
        with tempfile.TemporaryDirectory() as tmp:
            quantize_static(str(fp32), str(Path(tmp) / "int8.onnx"), _Reader(input_name, batches), **kwargs)
        # onnxruntime writes the tensors in set order; sorted, the same ranges give the same tracked bytes.
        ranges.write_text(json.dumps(json.loads(ranges.read_text()), sort_keys=True) + "\n")
    quantize_static(str(fp32), str(int8), None, **kwargs)
    return route


def embedding_agreement(model_dir: Path, faces: np.ndarray, threads: int = 2,
                        embed: Callable[[Path, np.ndarray, int], np.ndarray] | None = None) -> dict[str, float | int | str]:
    """Cosine between a recognizer's int8 and fp32 embeddings of held-out aligned faces (`embed` runs one ONNX file;
    SFace's by default)."""
    from export.sface import cosine, onnx_embeddings
    embed = embed or onnx_embeddings
    cos = cosine(embed(model_dir / "fp32.onnx", faces, threads), embed(model_dir / "int8.onnx", faces, threads))
    return {"int8_vs_fp32_min_cosine": float(cos.min()), "int8_vs_fp32_mean_cosine": float(cos.mean()),
            "int8_vs_fp32_p5_cosine": float(np.percentile(cos, 5)), "heldout_faces": int(len(faces)),
            "heldout_from": "LFW pairsDevTest photos, MTCNN fp32 + ArcFace alignment (disjoint from calibration)"}


def cascade_agreement(fp32: Cascade, int8: Cascade, photos: list[Path]) -> dict[str, float | int | str]:
    """The all-int8 cascade against the fp32 one on held-out photos: how often it finds the fp32 main face, and
    how far its landmarks move, in units of the fp32 inter-ocular distance."""
    from export.lfw import load_rgb
    found = total = 0
    errors = []
    for path in photos:
        image = load_rgb(path)
        reference = main_face(*fp32.detect(image))
        if reference is None:
            continue
        total += 1
        candidate = main_face(*int8.detect(image))
        interocular = float(np.linalg.norm(reference[1] - reference[0]))
        if candidate is None or np.linalg.norm(candidate[2] - reference[2]) > interocular:
            continue
        found += 1
        errors.append(float(np.mean(np.linalg.norm(candidate - reference, axis=1))) / interocular)
    return {"int8_cascade_finds_fp32_face": found / max(total, 1),
            "int8_vs_fp32_landmark_error_mean_iod": float(np.mean(errors)) if errors else float("nan"),
            "int8_vs_fp32_landmark_error_max_iod": float(np.max(errors)) if errors else float("nan"),
            "heldout_photos": total, "heldout_from": "LFW pairsDevTest photos (disjoint from calibration)",
            "cascade": "P-, R- and O-Net all int8"}
