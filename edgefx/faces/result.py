"""The outcome of a verification: the two prepared faces, the decision, timings and the optional explanation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from edgefx.faces.detection import Face
from edgefx.faces.quality import LIMITS, Quality, measure

ImageInput = bytes | bytearray | memoryview | np.ndarray


@dataclass
class PreparedFace:
    """One photo after decode, detection and alignment."""

    label: str
    photo: np.ndarray  # RGB uint8 HxWx3
    face: Face
    others: list[Face]
    crop: np.ndarray  # aligned RGB uint8 112x112x3
    matrix: np.ndarray  # 2x3 photo -> crop

    @cached_property
    def quality(self) -> Quality:
        """Size, pose, sharpness, light, cut and other faces (`edgefx.faces.quality`), measured once."""
        return measure(self.photo, self.face, self.others, self.crop)

    def report(self) -> dict[str, Any]:
        box = [round(float(v), 1) for v in self.face.box]
        return {
            "image": self.label,
            "box": box,
            "landmarks": [[round(float(x), 1), round(float(y), 1)] for x, y in self.face.landmarks],
            "score": round(float(self.face.score), 4),
            "size_px": round(float(max(box[2] - box[0], box[3] - box[1])), 1),
            "image_size": [int(self.photo.shape[1]), int(self.photo.shape[0])],
            "other_faces": len(self.others),
            "other_boxes": [[round(float(v), 1) for v in f.box] for f in self.others],
            "quality": self.quality.to_dict(),
        }


@dataclass
class VerifyResult:
    """A verification: the decision, the two faces, timings, and (when asked) the explanation."""

    match: bool
    score: float
    threshold: float
    confidence: float
    pic_genuine: float
    faces: tuple[PreparedFace, ...]  # a and b; a gallery decision without a kept enrolled photo has only a
    timings_ms: dict[str, float]
    model: dict[str, str]
    explanation: Any = None  # an edgefx.explain.result.Explanation when explained (a higher layer)
    embeddings: tuple[np.ndarray, np.ndarray] | None = None  # kept in memory only, never serialised
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "match": self.match,
            "score": round(self.score, 6),
            "threshold": round(self.threshold, 6),
            "confidence": round(self.confidence, 6),
            "pic_genuine": round(self.pic_genuine, 6),
            "decision": "match" if self.match else "no match",
            "faces": [f.report() for f in self.faces],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "model": dict(self.model),
            "quality_limits": asdict(LIMITS),  # what each face's quality issues were judged against
        }
        if self.explanation is not None:
            out["explanation"] = self.explanation.to_dict()
        out.update(self.extra)
        return out
