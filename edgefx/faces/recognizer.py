"""The recognizer seam: what every face recognizer offers (`name`, `dim`, `model`, `flip_tta`, `embed`), and the
one-ONNX-model embedder that SFace and ArcFace share (raw RGB 0..255 NCHW in, an embedding out, rows L2-normalised)."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgefx.runtime.backend import Model

CROP_SIZE = 112


@runtime_checkable
class Recognizer(Protocol):
    """A face recognizer: aligned 112x112 RGB crops in, unit-norm embeddings out (compared by cosine)."""

    name: str  # its calibration file is models/calibration/<name>-<precision>[-<detector>].json
    dim: int  # embedding size
    flip_tta: bool  # mirror-image test-time augmentation

    @property
    def model(self) -> Any:
        """The backend handle (`device`, `backend`, `release_memory()`), for the Engine's info and memory."""

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) RGB crops (uint8 or float 0..255) -> (N, dim) unit-norm float32 rows."""


def check_crops(crops: np.ndarray) -> np.ndarray:
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
        raise ValueError(f"expected (N, {CROP_SIZE}, {CROP_SIZE}, 3) RGB crops, got {crops.shape}")
    return crops


class OnnxEmbedder:
    """One embedding network behind the backend interface: batched, RGB order enforced, L2-normalised, optional flip
    test-time augmentation (the sum of the embeddings of the crop and of its mirror image, normalised)."""

    name = "embedder"
    dim = 0

    def __init__(self, model: Model, max_batch: int = 16, flip_tta: bool = False) -> None:
        self._model = model
        self.input_name = model.input_names[0]
        self.max_batch = max_batch
        self.flip_tta = flip_tta

    @property
    def model(self) -> Model:
        return self._model

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) RGB crops (uint8 or float 0..255) -> (N, dim) unit-norm float32 embeddings."""
        crops = check_crops(crops)
        if not self.flip_tta:
            return l2_normalize(self._raw(crops))
        # One batch of originals and mirror images: batches run faster per image than two calls.
        both = self._raw(np.concatenate([crops, crops[:, :, ::-1, :]]))
        return l2_normalize(both[: len(crops)] + both[len(crops) :])

    def _raw(self, crops: np.ndarray) -> np.ndarray:
        out = np.empty((len(crops), self.dim), dtype=np.float32)
        for start in range(0, len(crops), self.max_batch):
            chunk = crops[start : start + self.max_batch]
            nchw = np.ascontiguousarray(chunk.transpose(0, 3, 1, 2), dtype=np.float32)
            (feats,) = self.model.run({self.input_name: nchw})[:1]
            out[start : start + len(chunk)] = feats.reshape(len(chunk), -1)
        return out


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)).astype(np.float32)
