"""The open-set (1:N) decision: a threshold set for a false-positive identification rate (FPIR, NIST FRVT) at the
running gallery's size, and a PIC-style confidence from the mated and non-mated top-score densities on LFW.

How the threshold scales with the gallery: a non-mated probe is falsely identified when its best score over N
enrolled subjects passes the threshold, so FPIR(N) = 1 - (1 - FMR)^N for a per-comparison false-match rate FMR
(comparisons taken as independent). The calibration stores the per-comparison impostor score quantiles (FMR ->
threshold), measured on every non-mated LFW comparison; at run time FMR = 1 - (1 - FPIR)^(1/N) is looked up for the
number N of enrolled subjects, so the threshold rises as the gallery grows and FPIR stays at its target."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefx.faces.decision import Calibration, calibration_path
from edgefx.runtime.errors import CalibrationMismatch

FMR_GRID = np.logspace(-9, np.log10(0.5), 120)  # per-comparison false-match rates the quantile table is kept at


def identify_calibration_path(models_dir: Path, recognizer: str, precision: str, detector: str = "mtcnn") -> Path:
    """models/calibration/identify/<recognizer>-<precision>[-<detector>].json: keyed like the verify files."""
    verify_file = calibration_path(models_dir, recognizer, precision, detector)
    return verify_file.parent / "identify" / verify_file.name


def fmr_for(fpir: float, gallery_size: int) -> float:
    """The per-comparison FMR that gives this FPIR over `gallery_size` independent comparisons."""
    return float(-np.expm1(np.log1p(-fpir) / max(gallery_size, 1)))


@dataclass
class OpenSetCalibration:
    """Impostor quantile table, the FPIR thresholds measured at the calibration gallery size, and the densities."""

    recognizer: str
    precision: str
    detector: str
    fmr: np.ndarray  # ascending per-comparison FMRs
    score_at_fmr: np.ndarray  # the impostor score exceeded with that rate (descending)
    densities: Calibration  # genuine = mated probes' scores, impostor = non-mated probes' best scores
    meta: dict[str, Any] = field(default_factory=dict)

    def threshold(self, fpir: float, gallery_size: int) -> float:
        """The score threshold for this FPIR with `gallery_size` enrolled subjects (clamped to the table's range:
        beyond the rarest measured comparison the threshold stays at that score, said in `meta.fmr_resolved`)."""
        target = np.log10(max(fmr_for(fpir, gallery_size), float(self.fmr[0])))
        return float(np.interp(target, np.log10(self.fmr), self.score_at_fmr))

    def decide(self, score: float, threshold: float) -> tuple[bool, float, float]:
        """(match, confidence in the decision taken, PIC of the mated class)."""
        pic = self.densities.confidence(score)
        match = score >= threshold
        return match, (pic if match else 1.0 - pic), pic

    def require(self, recognizer: str, precision: str, detector: str) -> "OpenSetCalibration":
        made_for = (self.recognizer, self.precision, self.detector)
        if made_for != (recognizer, precision, detector):
            raise CalibrationMismatch(f"the open-set calibration was fitted for {'/'.join(made_for)}, not for "
                                      f"{recognizer}/{precision}/{detector}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"recognizer": self.recognizer, "precision": self.precision, "detector": self.detector,
                "fmr": [float(f"{v:.6g}") for v in self.fmr],
                "score_at_fmr": [round(float(v), 6) for v in self.score_at_fmr],
                "densities": self.densities.to_dict(), "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "OpenSetCalibration":
        return cls(d["recognizer"], d["precision"], d["detector"], np.asarray(d["fmr"], np.float64),
                   np.asarray(d["score_at_fmr"], np.float64), Calibration.from_dict(d["densities"]),
                   dict(d.get("meta", {})))

    @classmethod
    def fit(cls, recognizer: str, precision: str, detector: str, mated: np.ndarray, non_mated_best: np.ndarray,
            impostor_comparisons: np.ndarray, meta: dict[str, Any] | None = None,
            keep_scores: int = 2000) -> "OpenSetCalibration":
        """From the mated probes' scores against their own subject, the non-mated probes' best scores, and every
        per-comparison impostor score (non-mated probe x subject)."""
        imp = np.sort(np.asarray(impostor_comparisons, np.float64))[::-1]
        resolvable = FMR_GRID[FMR_GRID * len(imp) >= 1]
        ranks = np.minimum((resolvable * len(imp)).astype(np.int64), len(imp) - 1)
        densities = Calibration.fit(recognizer, precision, subsample(mated, keep_scores),
                                    subsample(non_mated_best, keep_scores))
        full = Calibration.fit(recognizer, precision, mated, non_mated_best)  # bandwidths from every score
        densities.genuine_bandwidth, densities.impostor_bandwidth = full.genuine_bandwidth, full.impostor_bandwidth
        densities.meta = {"recognizer": recognizer, "detector": detector, "kind": "open-set top scores"}
        info = dict(meta or {}, fmr_resolved=float(resolvable[0]), impostor_comparisons=int(len(imp)))
        return cls(recognizer, precision, detector, resolvable, imp[ranks], densities, info)


def subsample(scores: np.ndarray, n: int) -> np.ndarray:
    """At most n scores at evenly spaced quantiles (the density's shape, in a file small enough to track)."""
    s = np.sort(np.asarray(scores, np.float64))
    return s if len(s) <= n else s[np.linspace(0, len(s) - 1, n).round().astype(np.int64)]


def load_open_set(models_dir: Path, recognizer: str, precision: str, detector: str,
                  fusion_weight: float | None = None) -> OpenSetCalibration | None:
    """The open-set calibration for these models, or None when none was built, or (a fusion) it was fitted with
    another weight: callers fall back to the verify threshold and say so."""
    path = identify_calibration_path(models_dir, recognizer, precision, detector)
    if not path.is_file():
        return None
    calibration = OpenSetCalibration.from_dict(json.loads(path.read_text())).require(recognizer, precision, detector)
    if recognizer == "fusion" and fusion_weight is not None and \
            abs(float(calibration.meta.get("fusion_weight", 0.5)) - fusion_weight) > 1e-9:
        return None
    return calibration
