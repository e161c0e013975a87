"""facenet-pytorch 2.6.0's own MTCNN, made importable under our torch, as the reference for tests.

facenet_pytorch imports torchvision (only for `batched_nms` and `to_tensor`) and Pillow, and
torchvision does not work with our torch. export.sources installs the pinned wheel with --no-deps
into a cache directory; we check the sha256 of the files the reference runs, put tiny torch
implementations of those two functions in `sys.modules`, and import `facenet_pytorch.models.mtcnn`
without running the package `__init__` (which pulls in training code and `requests`).
Only tests may use this module: it needs torch.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import types
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # for `export`, which is not an installed package

FACENET_PYTORCH = "facenet-pytorch"
FACENET_PYTORCH_VERSION = "2.6.0"

# sha256 of the files of facenet-pytorch==2.6.0 the reference depends on (from the wheel's RECORD).
PINNED_SHA256 = {
    "facenet_pytorch/models/mtcnn.py": "29a965963337313068ab335cbc48f4a4facc2e5857756ef7b9ab11e5c1d6b620",
    "facenet_pytorch/models/utils/detect_face.py": "7f6244c8118b9a19d0b6620e6dcb90625cced5b1eceed58d0d69303b5ccbab06",
    "facenet_pytorch/data/pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "facenet_pytorch/data/rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "facenet_pytorch/data/onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}


class ReferenceUnavailable(RuntimeError):
    """facenet-pytorch could not be located or installed (no network and no cached copy)."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _has_pinned_files(root: Path) -> bool:
    return all((root / rel).is_file() and _sha256(root / rel) == digest for rel, digest in PINNED_SHA256.items())


def locate_facenet_pytorch() -> Path:
    """Directory that contains the pinned `facenet_pytorch/` package, installed by export.sources if needed."""
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        dist = distribution(FACENET_PYTORCH)
        root = Path(str(dist.locate_file("")))
        if dist.version == FACENET_PYTORCH_VERSION and _has_pinned_files(root):
            return root
    except PackageNotFoundError:
        pass
    from export.sources import FACENET_PYTORCH as SOURCE
    from export.sources import SourceError, ensure_installed

    try:
        root = ensure_installed(SOURCE)
    except SourceError as exc:
        raise ReferenceUnavailable(str(exc)) from exc
    if not _has_pinned_files(root):
        raise ReferenceUnavailable(f"{root} does not hold the pinned {FACENET_PYTORCH} files (sha256 mismatch)")
    return root


def _batched_nms(boxes, scores, idxs, iou_threshold: float):
    """torchvision.ops.batched_nms: greedy IoU NMS per index, areas without the +1 convention."""
    import torch

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    b = boxes + offsets[:, None]
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    order = torch.argsort(scores, descending=True, stable=True)
    b, area = b[order], area[order]
    lt = torch.maximum(b[:, None, :2], b[None, :, :2])
    rb = torch.minimum(b[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    iou = inter / (area[:, None] + area[None, :] - inter)
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return order[torch.as_tensor(keep, dtype=torch.int64)]


def _to_tensor(pic):
    import numpy as np
    import torch

    return torch.from_numpy(np.ascontiguousarray(np.asarray(pic).transpose(2, 0, 1)))


def _module(name: str, **attrs) -> types.ModuleType:
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


def _install_shims() -> None:
    try:
        import torchvision.ops.boxes  # noqa: F401
    except Exception:
        for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
            del sys.modules[name]
        functional = _module("torchvision.transforms.functional", to_tensor=_to_tensor)
        boxes = _module("torchvision.ops.boxes", batched_nms=_batched_nms)
        sys.modules.update({
            "torchvision": _module("torchvision"),
            "torchvision.ops": _module("torchvision.ops", boxes=boxes, batched_nms=_batched_nms),
            "torchvision.ops.boxes": boxes,
            "torchvision.transforms": _module("torchvision.transforms", functional=functional),
            "torchvision.transforms.functional": functional,
        })
    try:
        import PIL.Image  # noqa: F401
    except ImportError:
        # detect_face only uses PIL for PIL inputs; we always pass numpy arrays.
        image = _module("PIL.Image", Image=type("Image", (), {}), BILINEAR=2)
        sys.modules.update({"PIL": _module("PIL", Image=image), "PIL.Image": image})


def import_reference_module() -> types.ModuleType:
    """`facenet_pytorch.models.mtcnn` from the pinned wheel, without the package `__init__`."""
    root = locate_facenet_pytorch()
    _install_shims()
    existing = sys.modules.get("facenet_pytorch.models.mtcnn")
    if existing is not None:
        return existing
    pkg_dir = root / "facenet_pytorch"
    for name, path in [("facenet_pytorch", pkg_dir), ("facenet_pytorch.models", pkg_dir / "models"),
                       ("facenet_pytorch.models.utils", pkg_dir / "models" / "utils")]:
        if name not in sys.modules:
            pkg = types.ModuleType(name)
            pkg.__path__ = [str(path)]
            sys.modules[name] = pkg
    return importlib.import_module("facenet_pytorch.models.mtcnn")


def reference_mtcnn(min_face_size: int = 20, thresholds=(0.6, 0.7, 0.7), factor: float = 0.709):
    """facenet-pytorch's MTCNN on CPU; call `.detect(rgb_uint8, landmarks=True)`."""
    import torch

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    mod = import_reference_module()
    return mod.MTCNN(min_face_size=min_face_size, thresholds=list(thresholds), factor=factor,
                     select_largest=False, device=torch.device("cpu")).eval()


def detector_nets(threads: int = 2, backend: str = "onnxruntime") -> tuple:
    """Our P/R/O-Nets: the built fp32 models from the manifest, else exported on the fly into a cache folder.

    The fallback keeps the detector tests meaningful on a checkout whose models are not built yet
    (it needs torch, like the reference itself); it uses the same exporter as `python -m export`.
    """
    from edgefx.runtime.backend import OnnxRuntimeModel, load_model
    from edgefx.runtime.errors import ModelMissing

    try:
        return tuple(load_model(n, "fp32", backend=backend, threads=threads) for n in ("pnet", "rnet", "onet"))
    except ModelMissing:
        pass
    from export.mtcnn import export_onnx_bytes

    out_dir = Path(os.environ.get("EDGEFX_CACHE", Path.home() / ".cache" / "edgefx")) / "test-mtcnn"
    out_dir.mkdir(parents=True, exist_ok=True)
    nets = []
    for name in ("pnet", "rnet", "onet"):
        path = out_dir / f"{name}.onnx"
        path.write_bytes(export_onnx_bytes(name))
        nets.append(OnnxRuntimeModel(name, path, threads=threads))
    return tuple(nets)


if __name__ == "__main__":
    print(locate_facenet_pytorch())
