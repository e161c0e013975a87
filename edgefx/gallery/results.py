"""What the gallery's operations return: an enrolment, an identification with its candidates; each has `to_dict()`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edgefx.faces.result import VerifyResult


@dataclass(frozen=True)
class Candidate:
    """An enrolled subject as a candidate of an identification: its best score over its templates."""

    id: str
    name: str | None
    score: float
    template_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "score": round(self.score, 6)}


@dataclass
class Enrolment:
    """The templates stored for one subject by one enrolment."""

    subject: str
    name: str | None
    template_ids: list[str]
    faces: list[dict[str, Any]]
    kept_crops: bool
    timings_ms: dict[str, float]
    model: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "name": self.name, "templates": list(self.template_ids),
                "kept_crops": self.kept_crops, "faces": self.faces,
                "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()}, "model": dict(self.model)}


@dataclass
class Identification:
    """A 1:N open-set decision: the best subject if it passes the threshold, and the top candidates."""

    match: bool
    score: float | None  # the best candidate's score (None with an empty gallery)
    threshold: float
    confidence: float
    pic_genuine: float | None
    candidates: list[Candidate]
    threshold_source: str  # how the threshold was set (FPIR at this gallery size, or the verify fallback)
    gallery: dict[str, int]  # subjects and templates searched
    pair: VerifyResult  # the probe (image a) and, when the best candidate's crop was kept, that crop (image b)
    timings_ms: dict[str, float]
    model: dict[str, str]
    explanation: Any = None  # an edgefx.explain Explanation of `pair` (set by the Engine, a higher layer)
    explanation_unavailable: str | None = None  # why an asked-for explanation could not be made

    @property
    def subject(self) -> str | None:
        return self.candidates[0].id if self.match and self.candidates else None

    def to_dict(self) -> dict[str, Any]:
        top = self.candidates[0].score if self.candidates else None
        second = self.candidates[1].score if len(self.candidates) > 1 else None
        out: dict[str, Any] = {
            "match": self.match, "subject": self.subject,
            "score": None if self.score is None else round(self.score, 6),
            "threshold": round(self.threshold, 6), "confidence": round(self.confidence, 6),
            "candidates": [c.to_dict() for c in self.candidates],
            "faces": [f.report() for f in self.pair.faces],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "decision": "match" if self.match else "no match",
            "pic_genuine": None if self.pic_genuine is None else round(self.pic_genuine, 6),
            "margin": None if top is None or second is None else round(top - second, 6),
            "threshold_source": self.threshold_source, "gallery": dict(self.gallery), "model": dict(self.model),
        }
        if self.explanation is not None:
            out["explanation"] = self.explanation.to_dict()
        if self.explanation_unavailable:
            out["explanation_unavailable"] = self.explanation_unavailable
        return out
