"""SFace face embeddings: batched, RGB order enforced, L2-normalised, optional flip test-time augmentation."""

from __future__ import annotations

import numpy as np

from edgefx.runtime.backend import Model

EMBEDDING_SIZE = 128
CROP_SIZE = 112


class SFace:
    """The SFace recognizer (ArcFace-family, 128-d) behind the backend interface."""

    def __init__(self, model: Model, max_batch: int = 16, flip_tta: bool = False) -> None:
        self.model = model
        self.input_name = model.input_names[0]
        self.max_batch = max_batch
        self.flip_tta = flip_tta

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) RGB crops (uint8 or float 0..255) -> (N, 128) unit-norm float32 embeddings."""
        crops = np.asarray(crops)
        if crops.ndim != 4 or crops.shape[1:] != (CROP_SIZE, CROP_SIZE, 3):
            raise ValueError(f"expected (N, {CROP_SIZE}, {CROP_SIZE}, 3) RGB crops, got {crops.shape}")
        if not self.flip_tta:
            return l2_normalize(self._raw(crops))
        # One batch of originals and mirror images: batches run faster per image than two calls.
        both = self._raw(np.concatenate([crops, crops[:, :, ::-1, :]]))
        return l2_normalize(both[: len(crops)] + both[len(crops) :])

    def _raw(self, crops: np.ndarray) -> np.ndarray:
        out = np.empty((len(crops), EMBEDDING_SIZE), dtype=np.float32)
        for start in range(0, len(crops), self.max_batch):
            chunk = crops[start : start + self.max_batch]
            nchw = np.ascontiguousarray(chunk.transpose(0, 3, 1, 2), dtype=np.float32)
            (feats,) = self.model.run({self.input_name: nchw})[:1]
            out[start : start + len(chunk)] = feats.reshape(len(chunk), -1)
        return out


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)).astype(np.float32)
