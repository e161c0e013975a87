"""Score-level fusion of two recognizers, expressed as one recognizer so that the decision, the calibration and the
explanations need nothing new.

Each face is embedded by both models (one batch per model) and the fused embedding is the concatenation of the two
unit vectors scaled by 1/sqrt(2): e = [u, v] / sqrt(2). It is a unit vector (|u|^2/2 + |v|^2/2 = 1), and for two faces
e . e' = (u . u' + v . v') / 2, so its cosine is exactly the MEAN of the two models' cosines (to float rounding). The
mean of cosines is the fusion measured on LFW View 1 (DevTest 99.2 %, EER 0.8 %), and keeping it a cosine of unit
vectors means `decision.cosine`, the calibrated threshold and every saliency map work on it unchanged."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefx.faces.recognizer import Recognizer, check_crops

SCALE = np.float32(1.0 / np.sqrt(2.0))


class FusedModel:
    """The backend handle of a fusion: the device and backend of its parts, and memory release for both."""

    def __init__(self, *models: Any) -> None:
        self.parts = models
        self.device = _joined(getattr(m, "device", "CPU") for m in models)
        self.backend = _joined(getattr(m, "backend", "?") for m in models)

    def release_memory(self) -> bool:
        freed = [bool(m.release_memory()) for m in self.parts if hasattr(m, "release_memory")]
        return any(freed)


class Fusion:
    """Mean-of-cosines fusion of two recognizers (default: SFace and ArcFace)."""

    name = "fusion"

    def __init__(self, first: Recognizer, second: Recognizer) -> None:
        self.parts = (first, second)
        self.dim = first.dim + second.dim
        self._model = FusedModel(first.model, second.model)

    @property
    def model(self) -> FusedModel:
        return self._model

    @property
    def flip_tta(self) -> bool:
        return all(part.flip_tta for part in self.parts)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) RGB crops -> (N, dim_a + dim_b) unit rows [u, v] / sqrt(2)."""
        crops = check_crops(crops)
        rows = [part.embed(crops) for part in self.parts]  # each one batch, already unit rows
        return (np.concatenate(rows, axis=1) * SCALE).astype(np.float32)


def _joined(values: Any) -> str:
    unique = list(dict.fromkeys(str(v) for v in values))
    return "+".join(unique)
