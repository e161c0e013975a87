"""MTCNN P/R/O-Net: the torch nets of facenet-pytorch 2.6.0, exported to ONNX with the input normalisation in-graph."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from export import lfw
from export.sources import FACENET_PYTORCH, provenance, source_file

# facenet-pytorch feeds (rgb - 127.5) * 0.0078125; the exported graph does it, so the runtime feeds raw RGB 0..255.
PIXEL_MEAN = 127.5
PIXEL_SCALE = 0.0078125
OPSET = 17


class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The weights were trained (in Caffe) on a W,H-transposed flattening.
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


class RawRGB(nn.Module):
    """Wraps a net so that it takes raw RGB 0..255 and normalises in-graph, exactly as facenet-pytorch does."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> Any:
        return self.net((x - PIXEL_MEAN) * PIXEL_SCALE)


NETS: dict[str, type[nn.Module]] = {"pnet": PNet, "rnet": RNet, "onet": ONet}
SIDE = {"pnet": None, "rnet": 24, "onet": 48}
OUTPUTS = {"pnet": ["reg", "prob"], "rnet": ["reg", "prob"], "onet": ["reg", "landmarks", "prob"]}
OUTPUT_DOC = {
    "reg": "box regression (dx1, dy1, dx2, dy2) as fractions of the box size",
    "prob": "softmax (not-face, face)",
    "landmarks": "x of the 5 points then y of the 5 points, as fractions of the box (ArcFace order)",
}


def source_relpath(name: str) -> str:
    return f"facenet_pytorch/data/{name}.pt"


def load_net(name: str) -> nn.Module:
    """The torch net with the pinned facenet-pytorch weights, loaded strictly."""
    net = NETS[name]()
    state = torch.load(source_file(FACENET_PYTORCH, source_relpath(name)), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.eval()


def export_onnx_bytes(name: str) -> bytes:
    """Serialised ONNX of RawRGB(net): dynamic batch; P-Net also dynamic height and width."""
    model = RawRGB(load_net(name)).eval()
    side = SIDE[name] or 48
    dummy = torch.zeros(1, 3, side, side)
    dynamic = {0: "batch"} if SIDE[name] else {0: "batch", 2: "height", 3: "width"}
    out_dynamic = {0: "batch"} if SIDE[name] else {0: "batch", 2: "out_height", 3: "out_width"}
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (dummy,), buffer, dynamo=False, opset_version=OPSET, input_names=["input"],
                          output_names=OUTPUTS[name], do_constant_folding=True,
                          dynamic_axes={"input": dynamic, **{o: out_dynamic for o in OUTPUTS[name]}})
    return buffer.getvalue()


def parity_inputs(name: str) -> np.ndarray | list[np.ndarray]:
    """Real LFW pixels (raw RGB 0..255, NCHW float32) for the parity check: whole photos at two pyramid
    scales for P-Net, face-centred crops resized to 24 / 48 for R-Net / O-Net."""
    import cv2
    images = [lfw.load_rgb(p) for p in lfw.sample_images(8, split="test")]
    if SIDE[name] is None:
        batches = []
        for scale in (0.6, 0.3):
            side = int(250 * scale + 1)
            batches.append(np.stack([cv2.resize(im, (side, side), interpolation=cv2.INTER_AREA)
                                     for im in images]).transpose(0, 3, 1, 2).astype(np.float32))
        return batches
    side = SIDE[name]
    crops = [cv2.resize(im[y:y + s, x:x + s], (side, side), interpolation=cv2.INTER_AREA)
             for im in images for (x, y, s) in ((65, 65, 120), (50, 40, 150), (80, 90, 90))]
    return np.stack(crops).transpose(0, 3, 1, 2).astype(np.float32)


def torch_reference(name: str, batch: np.ndarray) -> list[np.ndarray]:
    """The facenet-pytorch computation: normalise on the torch side, run the original net."""
    net = load_net(name)
    with torch.no_grad():
        outs = net((torch.from_numpy(batch) - PIXEL_MEAN) * PIXEL_SCALE)
    return [o.numpy() for o in outs]


def max_abs_diff(name: str, onnx_path: Path, batches: np.ndarray | list[np.ndarray]) -> float:
    """Largest |onnxruntime(onnx) - torch| over every output on the given raw-RGB batches."""
    import onnxruntime as ort
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch in batches if isinstance(batches, list) else [batches]:
        got = session.run(None, {"input": batch})
        for a, b in zip(got, torch_reference(name, batch)):
            worst = max(worst, float(np.max(np.abs(a - b))))
    return worst


def io_spec(name: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Manifest `inputs` and `outputs` of one net."""
    side = SIDE[name]
    shape: list[Any] = ["batch", 3, side, side] if side else ["batch", 3, "height", "width"]
    inputs = [{"name": "input", "shape": shape, "dtype": "float32", "layout": "NCHW", "colour_order": "RGB",
               "value_range": [0.0, 255.0],
               "normalisation": f"in-graph: (x - {PIXEL_MEAN}) * {PIXEL_SCALE}; feed raw RGB 0..255",
               "resize": "cv2.INTER_AREA (facenet-pytorch uses area interpolation)"}]
    widths = {"reg": 4, "prob": 2, "landmarks": 10}
    outputs = []
    for out in OUTPUTS[name]:
        oshape: list[Any] = ["batch", widths[out]] if side else ["batch", widths[out], "out_height", "out_width"]
        outputs.append({"name": out, "shape": oshape, "dtype": "float32", "meaning": OUTPUT_DOC[out]})
    return inputs, outputs


def build_fp32(name: str, out_dir: Path) -> dict[str, Any]:
    """Export one net to out_dir/fp32.onnx, check parity on real LFW pixels, return the manifest entry fields."""
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = out_dir / "fp32.onnx"
    onnx_path.write_bytes(export_onnx_bytes(name))
    inputs, outputs = io_spec(name)
    entry: dict[str, Any] = {"source": provenance(FACENET_PYTORCH, source_relpath(name)),
                             "license": FACENET_PYTORCH.license, "inputs": inputs, "outputs": outputs,
                             "precision": "fp32", "parity": {}}
    if lfw.available():
        diff = max_abs_diff(name, onnx_path, parity_inputs(name))
        entry["parity"]["onnx_vs_torch_max_abs_diff"] = diff
        if diff > 1e-4:
            raise RuntimeError(f"{name}: ONNX differs from the torch net by {diff:.3g} > 1e-4")
    else:
        entry["parity"]["onnx_vs_torch_max_abs_diff"] = None
        entry["parity"]["note"] = f"not measured: {lfw.missing_reason()}"
    return entry
