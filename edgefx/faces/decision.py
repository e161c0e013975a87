"""The decision: cosine score, calibrated threshold, and PIC confidence from fitted score densities."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefx.runtime.errors import CalibrationMismatch, ModelMissing
from edgefx.runtime.manifest import BUILD_HINT


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (they need not be normalised)."""
    return float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))


def _log_kde(x: np.ndarray, samples: np.ndarray, bandwidth: float) -> np.ndarray:
    """log of a Gaussian kernel density estimate, computed stably so tails do not underflow."""
    z = (np.asarray(x, dtype=np.float64)[..., None] - samples) / bandwidth
    logk = -0.5 * z * z
    peak = logk.max(axis=-1, keepdims=True)
    return (peak[..., 0] + np.log(np.exp(logk - peak).sum(axis=-1))
            - np.log(len(samples) * bandwidth * np.sqrt(2 * np.pi)))


@dataclass
class Calibration:
    """Threshold and score densities of one recognizer x precision, fitted on LFW View 1 DevTrain."""

    model: str
    precision: str
    threshold: float
    genuine_scores: np.ndarray
    impostor_scores: np.ndarray
    genuine_bandwidth: float
    impostor_bandwidth: float
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def recognizer(self) -> str:
        """The recognizer whose scores it was fitted on (`meta.recognizer`; older SFace files name it in `model`)."""
        return str(self.meta.get("recognizer", self.model))

    def require(self, recognizer: str, precision: str, detector: str = "mtcnn") -> "Calibration":
        """Itself, if fitted for this recognizer x precision x detector; CalibrationMismatch (a ModelError) if not."""
        made_for = (self.recognizer, self.precision, str(self.meta.get("detector", "mtcnn")))
        if made_for != (recognizer, precision, detector):
            raise CalibrationMismatch(
                f"the calibration was fitted for recognizer {made_for[0]} {made_for[1]} with detector {made_for[2]}, "
                f"not for {recognizer} {precision} with {detector}: its threshold does not apply to these scores")
        return self

    def require_weight(self, weight: float | None) -> "Calibration":
        """Itself, if fitted for a fusion with this weight (files from before the weight: the plain mean, 0.5), or
        for a single recognizer (None); CalibrationMismatch if not: another weight gives other scores."""
        fitted = self.meta.get("fusion_weight", 0.5 if self.recognizer == "fusion" else None)
        if weight is not None and fitted is not None and abs(float(fitted) - weight) > 1e-9:
            raise CalibrationMismatch(f"the calibration was fitted for a fusion weight of {fitted}, not {weight}: "
                                      "set EDGEFX_FUSION_WEIGHT to it or recalibrate (python -m export.calibrate)")
        return self

    def confidence(self, score: float) -> float:
        """PIC (Neto et al. 2022): genuine density / (genuine + impostor density) at this score.

        It is the probability that the pair is genuine under equal priors; it says how sure the
        decision is only through the fitted densities, so it is reported beside the decision.
        """
        lg = _log_kde(np.array([score]), self.genuine_scores, self.genuine_bandwidth)[0]
        li = _log_kde(np.array([score]), self.impostor_scores, self.impostor_bandwidth)[0]
        return float(1.0 / (1.0 + np.exp(np.clip(li - lg, -700, 700))))

    def decide(self, score: float) -> tuple[bool, float]:
        """(match, confidence in the decision taken): PIC for a match, 1 - PIC for a non-match."""
        match = score >= self.threshold
        pic = self.confidence(score)
        return match, (pic if match else 1.0 - pic)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "precision": self.precision, "threshold": self.threshold,
            "genuine_bandwidth": self.genuine_bandwidth, "impostor_bandwidth": self.impostor_bandwidth,
            "genuine_scores": [round(float(s), 6) for s in self.genuine_scores],
            "impostor_scores": [round(float(s), 6) for s in self.impostor_scores],
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Calibration":
        return cls(d["model"], d["precision"], float(d["threshold"]),
                   np.asarray(d["genuine_scores"], dtype=np.float64), np.asarray(d["impostor_scores"], dtype=np.float64),
                   float(d["genuine_bandwidth"]), float(d["impostor_bandwidth"]), dict(d.get("meta", {})))

    @classmethod
    def fit(cls, model: str, precision: str, genuine: np.ndarray, impostor: np.ndarray,
            meta: dict[str, Any] | None = None) -> "Calibration":
        """Accuracy-maximising threshold (middle of the best plateau) and Scott's-rule KDE bandwidths."""
        genuine = np.asarray(genuine, dtype=np.float64)
        impostor = np.asarray(impostor, dtype=np.float64)
        threshold = best_accuracy_threshold(genuine, impostor)
        return cls(model, precision, threshold, genuine, impostor, _scott(genuine), _scott(impostor), dict(meta or {}))


def _scott(x: np.ndarray) -> float:
    return float(np.std(x, ddof=1) * len(x) ** (-1.0 / 5.0))


def best_accuracy_threshold(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """The threshold with the highest accuracy; among ties, the middle of the widest best gap."""
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(len(genuine)), np.zeros(len(impostor))])
    order = np.argsort(scores)
    s, y = scores[order], labels[order]
    # Threshold between s[k-1] and s[k]: everything from k on is called a match.
    correct = np.concatenate([[0], np.cumsum(1 - y)]) + np.concatenate([np.cumsum(y[::-1])[::-1], [0]])
    cuts = np.concatenate([[s[0] - 1e-3], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-3]])
    gaps = np.concatenate([[1e-3], s[1:] - s[:-1], [1e-3]])
    best = np.flatnonzero(correct == correct.max())
    return float(cuts[best[np.argmax(gaps[best])]])


def calibration_path(models_dir: Path, model: str, precision: str, detector: str = "mtcnn") -> Path:
    """The landmarks shape the scores, so each detector has its own file (MTCNN's keeps the plain name)."""
    suffix = "" if detector == "mtcnn" else f"-{detector}"
    return Path(models_dir) / "calibration" / f"{model}-{precision}{suffix}.json"


def load_calibration(models_dir: Path, model: str, precision: str, detector: str = "mtcnn") -> Calibration:
    """The calibration of recognizer `model` x precision x detector; CalibrationMismatch if the file found there was
    fitted for another one (a copied or renamed file), ModelMissing if there is none."""
    path = calibration_path(models_dir, model, precision, detector)
    if not path.is_file():
        raise ModelMissing(f"no calibration for {model}/{precision} at {path}; {BUILD_HINT} with LFW present")
    return Calibration.from_dict(json.loads(path.read_text())).require(model, precision, detector)
