"""Score-level fusion of two recognizers, expressed as one recognizer so that the decision, the calibration and the
explanations need nothing new.

Each face is embedded by both models (one batch per model) and the fused embedding is the two unit vectors side by
side, scaled by the square roots of the weights: e = [sqrt(w) u, sqrt(1 - w) v]. It is a unit vector
(w |u|^2 + (1 - w) |v|^2 = 1), and for two faces e . e' = w (u . u') + (1 - w) (v . v'): its cosine is exactly the
WEIGHTED MEAN of the two models' cosines (to float rounding); w = 0.5 is their plain mean. Keeping it a cosine of unit
vectors means `decision.cosine`, the calibrated threshold and every saliency map work on it unchanged. The weight is
`Settings.fusion_weight` (0.6 for SFace, fitted on LFW DevTrain only: docs/experiments/recognizer_variants.py, README
"Verification accuracy"); each calibration records the weight it was fitted with."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefx.faces.recognizer import Recognizer, check_crops
from edgefx.runtime.errors import BadArgument

# The plain mean's scale (weight 0.5, `fuse_rows(u, v, 0.5)`), for code that fuses stored parts that way.
SCALE = np.float32(1.0 / np.sqrt(2.0))


def fuse_rows(first: np.ndarray, second: np.ndarray, weight: float) -> np.ndarray:
    """The fused unit rows [sqrt(w) u, sqrt(1 - w) v] of two models' unit rows u and v (what `Fusion.embed` gives)."""
    return np.concatenate([first * np.float32(np.sqrt(weight)), second * np.float32(np.sqrt(1.0 - weight))],
                          axis=1).astype(np.float32)


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
    """Weighted-mean-of-cosines fusion of two recognizers (SFace and ArcFace): `weight` on the first's cosine."""

    name = "fusion"

    def __init__(self, first: Recognizer, second: Recognizer, weight: float = 0.5) -> None:
        if not 0.0 < weight < 1.0:
            raise BadArgument(f"fusion weight {weight} must lie strictly between 0 and 1 (0.5 = the plain mean)")
        self.parts = (first, second)
        self.weight = float(weight)
        self.dim = first.dim + second.dim
        self._model = FusedModel(first.model, second.model)

    @property
    def model(self) -> FusedModel:
        return self._model

    @property
    def flip_tta(self) -> bool:
        return all(part.flip_tta for part in self.parts)

    def embed(self, crops: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) RGB crops -> (N, dim_a + dim_b) unit rows [sqrt(w) u, sqrt(1 - w) v]."""
        crops = check_crops(crops)
        first, second = (part.embed(crops) for part in self.parts)  # each one batch, already unit rows
        return fuse_rows(first, second, self.weight)


def _joined(values: Any) -> str:
    unique = list(dict.fromkeys(str(v) for v in values))
    return "+".join(unique)
