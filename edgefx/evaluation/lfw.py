"""LFW pair files (View 1 and View 2) and the verification metrics the field reports on them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Pair:
    path_a: str  # relative to the LFW image root, e.g. "Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
    path_b: str
    genuine: bool
    fold: int


def image_path(name: str, index: int) -> str:
    return f"{name}/{name}_{int(index):04d}.jpg"


def read_pairs(path: Path | str) -> list[Pair]:
    """Reads View 2 `pairs.txt` (header `10 300`) and View 1 files (header `N`)."""
    lines = [ln.split() for ln in Path(path).read_text().splitlines() if ln.strip()]
    header, rows = lines[0], lines[1:]
    if len(header) == 2:
        folds, per_fold = int(header[0]), int(header[1])
    elif len(header) == 1:
        folds, per_fold = 1, int(header[0])
    else:
        raise ValueError(f"{path}: unexpected header {' '.join(header)!r}")
    if len(rows) != folds * 2 * per_fold:
        raise ValueError(f"{path}: expected {folds * 2 * per_fold} pairs, found {len(rows)}")
    pairs = []
    for i, row in enumerate(rows):
        fold = i // (2 * per_fold)
        if len(row) == 3:
            pairs.append(Pair(image_path(row[0], int(row[1])), image_path(row[0], int(row[2])), True, fold))
        elif len(row) == 4:
            pairs.append(Pair(image_path(row[0], int(row[1])), image_path(row[2], int(row[3])), False, fold))
        else:
            raise ValueError(f"{path}: bad pair line {' '.join(row)!r}")
    return pairs


def lfw_image_root(root: Path | str) -> Path:
    """The folder holding NAME/NAME_0001.jpg: `root` itself or its `lfw-deepfunneled` child."""
    root = Path(root)
    return root / "lfw-deepfunneled" if (root / "lfw-deepfunneled").is_dir() else root


def accuracy_at(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    return float(np.mean((scores >= threshold) == labels.astype(bool)))


def roc(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fmr, tmr, thresholds) over every distinct score, thresholds descending."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order].astype(bool)
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    fmr = np.r_[0.0, fp[last] / max(int((~y).sum()), 1)]
    tmr = np.r_[0.0, tp[last] / max(int(y.sum()), 1)]
    return fmr, tmr, np.r_[np.inf, s[last]]


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    fmr, tmr, _ = roc(scores, labels)
    return float(np.trapezoid(tmr, fmr))


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate, interpolated where FMR crosses FNMR."""
    fmr, tmr, _ = roc(scores, labels)
    fnmr = 1 - tmr
    diff = fmr - fnmr
    k = int(np.flatnonzero(diff >= 0)[0])
    if k == 0:
        return float(fmr[0])
    d0, d1 = diff[k - 1], diff[k]
    w = d0 / (d0 - d1) if d0 != d1 else 0.0
    return float(fmr[k - 1] + w * (fmr[k] - fmr[k - 1]))


def fnmr_at_fmr(scores: np.ndarray, labels: np.ndarray, target: float) -> float | None:
    """Lowest FNMR with FMR <= target; None when there are too few impostors to resolve the target."""
    n_imp = int((~labels.astype(bool)).sum())
    if n_imp * target < 1:
        return None
    fmr, tmr, _ = roc(scores, labels)
    ok = fmr <= target
    return float(1 - tmr[ok].max())


def ten_fold_accuracy(scores: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> tuple[float, float, list[float]]:
    """Standard LFW View 2 protocol: threshold chosen on the 9 other folds; mean, std and per-fold accuracy."""
    from edgefx.faces.decision import best_accuracy_threshold

    accs = []
    for f in np.unique(folds):
        train, test = folds != f, folds == f
        genuine = scores[train & (labels == 1)]
        impostor = scores[train & (labels == 0)]
        t = best_accuracy_threshold(genuine, impostor)
        accs.append(accuracy_at(scores[test], labels[test], t))
    return float(np.mean(accs)), float(np.std(accs)), accs
