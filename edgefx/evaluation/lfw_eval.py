"""`edgefx eval lfw`: the standard LFW protocols (View 1, View 2 10-fold) plus an all-impostors protocol."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edgefx.faces.align import align
from edgefx.faces.detection import select_face
from edgefx.faces.mtcnn import MTCNN
from edgefx.faces.recognizer import Recognizer
from edgefx.faces.yunet import YuNet
from edgefx.runtime.image import read_image
from edgefx.evaluation.lfw import Pair, auc, eer, fnmr_at_fmr, lfw_image_root, read_pairs, roc, ten_fold_accuracy, accuracy_at
from edgefx.faces.decision import best_accuracy_threshold


@dataclass
class EmbeddedImages:
    """Embeddings of every distinct image of a protocol, and which ones failed to acquire a face."""

    paths: list[str]
    embeddings: np.ndarray
    failed: np.ndarray  # bool, True = no face found, fell back to a fixed centre alignment
    index: dict[str, int]


def progress(done: int, total: int, start: float, label: str) -> None:
    if not sys.stderr.isatty() and done not in (total,) and done % max(total // 10, 1):
        return
    rate = done / max(time.perf_counter() - start, 1e-9)
    eta = (total - done) / max(rate, 1e-9)
    bar = "#" * int(30 * done / max(total, 1))
    print(f"\r{label} [{bar:<30}] {done}/{total}  {rate:.1f}/s  eta {eta:.0f}s", end="" if done < total else "\n",
          file=sys.stderr, flush=True)


@dataclass
class AlignedImages:
    """The aligned 112x112 crop of every image (the detector's work), reusable by several recognizers."""

    paths: list[str]
    crops: np.ndarray  # uint8 (N, 112, 112, 3) RGB
    failed: np.ndarray  # bool, True = no face found, fell back to a fixed centre alignment


def align_images(root: Path, paths: list[str], detector: MTCNN | YuNet, label: str = "aligning") -> AlignedImages:
    """Detect and align each image once; a failure to acquire uses the median landmarks of the others."""
    crops: list[np.ndarray | None] = []
    landmarks_seen: list[np.ndarray] = []
    photos_failed: list[tuple[int, np.ndarray]] = []
    start = time.perf_counter()
    for i, rel in enumerate(paths):
        photo = read_image(str(root / rel))
        faces = detector.detect(photo)
        if faces:
            face, _ = select_face(faces, photo.shape)
            landmarks_seen.append(face.landmarks)
            crops.append(align(photo, face.landmarks)[0])
        else:
            crops.append(None)
            photos_failed.append((i, photo))
        progress(i + 1, len(paths), start, label)
    failed = np.zeros(len(paths), dtype=bool)
    if photos_failed:
        fallback = np.median(np.stack(landmarks_seen), axis=0) if landmarks_seen else None
        for i, photo in photos_failed:
            failed[i] = True
            if fallback is None:
                raise RuntimeError("no face found in any image")
            crops[i] = align(photo, fallback)[0]
    return AlignedImages(list(paths), np.stack([c for c in crops if c is not None]), failed)


def embed_aligned(aligned: AlignedImages, recognizer: Recognizer, batch: int = 32) -> EmbeddedImages:
    """Embed aligned crops in batches."""
    crops = aligned.crops
    emb = np.concatenate([recognizer.embed(crops[s : s + batch]) for s in range(0, len(crops), batch)])
    return EmbeddedImages(aligned.paths, emb, aligned.failed, {p: i for i, p in enumerate(aligned.paths)})


def embed_images(root: Path, paths: list[str], detector: MTCNN | YuNet, recognizer: Recognizer, batch: int = 32,
                 label: str = "embedding") -> EmbeddedImages:
    """Detect, align and embed each image once; a failure to acquire uses the median landmarks of the others."""
    return embed_aligned(align_images(root, paths, detector, label), recognizer, batch)


def pair_scores(images: EmbeddedImages, pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    a = np.array([images.index[p.path_a] for p in pairs])
    b = np.array([images.index[p.path_b] for p in pairs])
    scores = np.einsum("ij,ij->i", images.embeddings[a], images.embeddings[b]).astype(np.float64)
    labels = np.array([p.genuine for p in pairs], dtype=np.int64)
    folds = np.array([p.fold for p in pairs])
    fta = images.failed[a] | images.failed[b]
    return scores, labels, folds, fta


def metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    return {
        "eer": eer(scores, labels),
        "auc": auc(scores, labels),
        "fnmr_at_fmr": {f"{t:g}": fnmr_at_fmr(scores, labels, t) for t in (1e-3, 1e-4, 1e-5)},
        "n_genuine": int(labels.sum()),
        "n_impostor": int((1 - labels).sum()),
    }


def all_impostor_scores(images: EmbeddedImages) -> np.ndarray:
    """Scores of every pair of images of two different people (upper triangle, excluding same identity)."""
    identity = np.array([p.split("/")[0] for p in images.paths])
    sims = images.embeddings @ images.embeddings.T
    iu = np.triu_indices(len(identity), k=1)
    different = identity[iu[0]] != identity[iu[1]]
    return sims[iu][different].astype(np.float64)


def plot_curves(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray]], title: str) -> None:
    """A DET plot (FNMR vs FMR, log axes) drawn with OpenCV so the runtime needs no plotting library."""
    w, h, m = 720, 540, 70
    img = np.full((h, w, 3), 255, np.uint8)
    lo = -6.0

    def xy(fmr: np.ndarray, fnmr: np.ndarray) -> np.ndarray:
        lx = (np.log10(np.clip(fmr, 1e-6, 1)) - lo) / -lo
        ly = (np.log10(np.clip(fnmr, 1e-6, 1)) - lo) / -lo
        return np.stack([m + lx * (w - 2 * m), h - m - ly * (h - 2 * m)], axis=1).astype(np.int32)

    for d in range(int(lo), 1):
        t = (d - lo) / -lo
        x = int(m + t * (w - 2 * m))
        y = int(h - m - t * (h - 2 * m))
        cv2.line(img, (x, m), (x, h - m), (225, 225, 225), 1)
        cv2.line(img, (m, y), (w - m, y), (225, 225, 225), 1)
        cv2.putText(img, f"1e{d}", (x - 16, h - m + 18), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        cv2.putText(img, f"1e{d}", (8, y + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
    colours = [(200, 60, 30), (30, 120, 220), (40, 160, 40), (160, 40, 160)]
    for k, (name, (fmr, fnmr)) in enumerate(curves.items()):
        cv2.polylines(img, [xy(fmr, fnmr)], False, colours[k % 4], 2, cv2.LINE_AA)
        cv2.putText(img, name, (w - m - 260, m + 20 + 20 * k), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colours[k % 4], 1)
    cv2.putText(img, title, (m, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
    cv2.putText(img, "FMR", (w // 2, h - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    cv2.putText(img, "FNMR", (5, m - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def evaluate_lfw(root: Path, pairs_file: Path, detector: MTCNN | YuNet, recognizer: Recognizer,
                 threshold: float | None, impostors_all: bool = False) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    pairs = read_pairs(pairs_file)
    paths = sorted({p.path_a for p in pairs} | {p.path_b for p in pairs})
    t0 = time.perf_counter()
    images = embed_images(lfw_image_root(root), paths, detector, recognizer)
    seconds = time.perf_counter() - t0
    scores, labels, folds, fta = pair_scores(images, pairs)
    report: dict[str, Any] = {"pairs_file": str(pairs_file), "n_pairs": len(pairs), "n_images": len(paths),
                              "fta": {"images": int(images.failed.sum()), "pairs": int(fta.sum()),
                                      "image_rate": float(images.failed.mean())},
                              "embed_seconds": round(seconds, 1)}
    if len(np.unique(folds)) > 1:
        mean, std, per_fold = ten_fold_accuracy(scores, labels, folds)
        report.update(protocol="view2-10fold", accuracy=mean, accuracy_std=std, fold_accuracy=per_fold)
    else:
        report["protocol"] = "view1"
        if threshold is not None:
            wrong = np.flatnonzero((scores >= threshold) != (labels == 1))
            report.update(accuracy=accuracy_at(scores, labels, threshold), threshold=threshold,
                          errors=[{"a": pairs[i].path_a, "b": pairs[i].path_b, "genuine": bool(labels[i]),
                                   "score": round(float(scores[i]), 4)} for i in wrong])
        # The best any threshold could do on these very pairs: an optimistic bound, not a result. It tells a
        # miscalibrated threshold (calibrated accuracy below it) from a recognizer that cannot separate the pairs.
        best = best_accuracy_threshold(scores[labels == 1], scores[labels == 0])
        report.update(oracle_threshold=round(best, 4), oracle_accuracy=accuracy_at(scores, labels, best))
    report.update(metrics(scores, labels))
    fmr, tmr, _ = roc(scores, labels)
    curves = {"pairs": (fmr, 1 - tmr)}
    if impostors_all:
        genuine = scores[labels == 1]
        impostor = all_impostor_scores(images)
        s = np.concatenate([genuine, impostor])
        y = np.concatenate([np.ones(len(genuine), np.int64), np.zeros(len(impostor), np.int64)])
        report["impostors_all"] = metrics(s, y)
        fmr2, tmr2, _ = roc(s, y)
        curves["genuine pairs vs all impostors"] = (fmr2, 1 - tmr2)
    return report, curves
