"""Where does each photo-quality measure start to cost genuine matches? The limits of `edgefx.faces.quality`.

Evidence for the quality limits, not part of the product. Everything runs the product's own chain: the configured
MTCNN, `select_face`, `align`, SFace, cosine, and the calibrated threshold (models/calibration/sface-<precision>.json).

1. Real photos: every genuine pair of LFW View 1 DevTrain is embedded and each image measured
   (`edgefx.faces.quality.measure`); for each measure, the pairs are binned by the *worse* photo's value and each
   bin reports its median genuine score and FNMR at the calibrated threshold. Yaw and "several faces" are decided
   here (they cannot be synthesised from a 2-D photo).
2. Synthetic degradation: the first N DevTrain genuine pairs; photo A stays clean, photo B is degraded at growing
   strength: downscaled (landmarks scaled with it: the effect of resolution alone), darkened, over-exposed,
   flattened in contrast, Gaussian-blurred, rotated (roll) and cut by the left border through the face. Except for
   the downscaling, B is detected again and a photo with no face counts as a false rejection (score 0). A level's
   measure is the median over its photos; the limit is the measure's value, interpolated between levels, where
   first the median paired score drop reaches DROP (0.05) or FNMR reaches twice that of the clean pairs (the more
   cautious of the two).
3. Check: with the limits in `edgefx.faces.quality.LIMITS`, the DevTest genuine pairs are split into flagged
   (either photo has an issue) and clean, with their FNMR.

    .venv/bin/python docs/experiments/quality_thresholds.py [--lfw DIR] [--pairs N] [--json OUT]

The limits cite a `--pairs 200` run (12 CPU-minutes; 20 min wall on a 2-core machine shared with other jobs); the
default 100 pairs takes about half that, `--pairs 0` (real pairs and the DevTest check only) about 3 CPU-minutes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from edgefx.evaluation.lfw import lfw_image_root, read_pairs
from edgefx.faces.align import align
from edgefx.faces.decision import load_calibration
from edgefx.faces.detection import Face, select_face
from edgefx.faces.loading import load_face_models
from edgefx.faces.quality import LIMITS, Quality, issues, measure
from edgefx.runtime.config import Settings, default_lfw_dir
from edgefx.runtime.image import read_image

DROP = 0.05
MEASURES = {  # measure -> (how the worse photo of a pair is picked, the Quality field)
    "size_px": (min, "size_px"), "abs_yaw_deg": (max, "yaw_deg"), "abs_roll_deg": (max, "roll_deg"),
    "sharpness": (min, "sharpness"), "brightness_low": (min, "brightness"), "brightness_high": (max, "brightness"),
    "contrast": (min, "contrast"), "cut_fraction": (max, "cut_fraction"), "other_faces": (max, "other_faces"),
}


def value(q: Quality, field: str) -> float:
    v = float(getattr(q, field))
    return abs(v) if field in ("yaw_deg", "roll_deg") else v


def prepare(detector: Any, photo: np.ndarray) -> tuple[Face, list[Face], np.ndarray] | None:
    faces = detector.detect(photo)
    if not faces:
        return None
    face, others = select_face(faces, photo.shape)
    return face, others, align(photo, face.landmarks)[0]


def embed_paths(detector: Any, recognizer: Any, root: Path, paths: list[str]) -> dict[str, tuple[np.ndarray, Quality]]:
    out, crops, kept = {}, [], []
    for rel in paths:
        photo = read_image(str(root / rel))
        got = prepare(detector, photo)
        if got is None:
            continue
        face, others, crop = got
        out[rel] = (None, measure(photo, face, others, crop))
        crops.append(crop)
        kept.append(rel)
    emb = np.concatenate([recognizer.embed(np.stack(crops[i:i + 64])) for i in range(0, len(crops), 64)])
    return {rel: (emb[i], out[rel][1]) for i, rel in enumerate(kept)}


def genuine_scores(images: dict, pairs: list) -> tuple[np.ndarray, list[tuple[Quality, Quality]]]:
    scores, quals = [], []
    for p in pairs:
        if p.path_a in images and p.path_b in images:
            (ea, qa), (eb, qb) = images[p.path_a], images[p.path_b]
            scores.append(float(ea @ eb))
            quals.append((qa, qb))
    return np.array(scores), quals


def binned(scores: np.ndarray, quals: list, threshold: float) -> dict[str, list[dict]]:
    """Per measure: quantile bins of the worse photo's value, with n, median score and FNMR."""
    out = {}
    for name, (worse, field) in MEASURES.items():
        v = np.array([worse(value(qa, field), value(qb, field)) for qa, qb in quals])
        edges = np.unique(np.quantile(v, [0, 0.05, 0.2, 0.5, 0.8, 0.95, 1.0]))
        rows = []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (v >= lo) & ((v <= hi) if hi == edges[-1] else (v < hi))
            if sel.any():
                rows.append({"range": [round(float(lo), 4), round(float(hi), 4)], "n": int(sel.sum()),
                             "median_score": round(float(np.median(scores[sel])), 4),
                             "fnmr": round(float((scores[sel] < threshold).mean()), 4)})
        out[name] = rows
    return out


def rotate(photo: np.ndarray, face: Face, angle: float) -> np.ndarray:
    centre = tuple(float(c) for c in (face.box[:2] + face.box[2:]) / 2)
    m = cv2.getRotationMatrix2D(centre, -angle, 1.0)  # OpenCV's positive angle is counter-clockwise as seen
    return cv2.warpAffine(photo, m, (photo.shape[1], photo.shape[0]), borderMode=cv2.BORDER_REPLICATE)


def gain(photo: np.ndarray, g: float) -> np.ndarray:
    return np.clip(photo.astype(np.float32) * g, 0, 255).astype(np.uint8)


def flatten(photo: np.ndarray, c: float) -> np.ndarray:
    f = photo.astype(np.float32)
    return np.clip(f.mean() + (f - f.mean()) * c, 0, 255).astype(np.uint8)


def cut_left(photo: np.ndarray, face: Face, f: float) -> np.ndarray:
    x0 = int(round(face.box[0] + f * (face.box[2] - face.box[0])))
    return np.ascontiguousarray(photo[:, max(x0, 0):])


Degrade = Callable[[np.ndarray, Face, float], np.ndarray]
# kind -> (levels from mild to severe, degradation, the Quality field it moves, "min" or "max" limit)
KINDS: dict[str, tuple[list[float], Degrade, str, str]] = {
    "small": ([1.0, 0.8, 0.6, 0.5, 0.42, 0.35, 0.3, 0.25, 0.2], lambda p, f, s: p, "size_px", "min"),
    "dark": ([1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1, 0.07], lambda p, f, g: gain(p, g), "brightness", "min"),
    "bright": ([1.0, 1.3, 1.6, 1.9, 2.2, 2.6, 3.0], lambda p, f, g: gain(p, g), "brightness", "max"),
    "low_contrast": ([1.0, 0.6, 0.4, 0.3, 0.2, 0.15, 0.1], lambda p, f, c: flatten(p, c), "contrast", "min"),
    "blurred": ([0.0, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0],
                lambda p, f, s: cv2.GaussianBlur(p, (0, 0), s) if s > 0 else p, "sharpness", "min"),
    "tilted": ([0.0, 10, 20, 30, 40, 50, 60], rotate, "roll_deg", "max"),
    "cut": ([0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4], cut_left, "cut_fraction", "max"),
}


def degraded_b(detector: Any, kind: str, level: float, photo: np.ndarray, face: Face, others: list[Face]):
    """(crop, quality) of photo B degraded, or None when the detector finds no face in it."""
    if kind == "small":  # downscale; the landmarks follow (resolution alone, not the detector's reach)
        small = cv2.resize(photo, None, fx=level, fy=level, interpolation=cv2.INTER_AREA) if level < 1 else photo
        sx, sy = small.shape[1] / photo.shape[1], small.shape[0] / photo.shape[0]
        scale = np.array([sx, sy], np.float32)
        sface = Face(face.box * np.tile(scale, 2), face.score, face.landmarks * scale)
        crop = align(small, sface.landmarks)[0]
        return crop, measure(small, sface, others, crop)
    out = KINDS[kind][1](photo, face, level)
    got = prepare(detector, out)
    if got is None:
        return None
    f, o, crop = got
    return crop, measure(out, f, o, crop)


def crossing(values: list[float], criterion: list[float], limit: float) -> float | None:
    """The value (linear between levels) where the criterion first reaches `limit`; None if it never does."""
    for i in range(1, len(values)):
        if criterion[i] >= limit:
            c0, c1 = criterion[i - 1], criterion[i]
            t = (limit - c0) / (c1 - c0) if c1 > c0 else 1.0
            return values[i - 1] + float(np.clip(t, 0, 1)) * (values[i] - values[i - 1])
    return None


def synthetic(detector: Any, recognizer: Any, root: Path, pairs: list, clean_fnmr: float, threshold: float) -> dict:
    base = []
    for p in pairs:
        pa, pb = read_image(str(root / p.path_a)), read_image(str(root / p.path_b))
        ga, gb = prepare(detector, pa), prepare(detector, pb)
        if ga and gb:
            base.append((recognizer.embed(ga[2][None])[0], pb, gb))
    out = {}
    for kind, (levels, _, field, side) in KINDS.items():
        rows = []
        clean = None
        for level in levels:
            results = [degraded_b(detector, kind, level, pb, gb[0], gb[1]) for _, pb, gb in base]
            ok = [i for i, r in enumerate(results) if r is not None]
            scores = np.zeros(len(base))
            if ok:
                emb = recognizer.embed(np.stack([results[i][0] for i in ok]))
                scores[ok] = np.einsum("ij,ij->i", emb, np.stack([base[i][0] for i in ok]))
            clean = scores if clean is None else clean
            measured = [value(results[i][1], field) for i in ok]
            flagged = [kind in issues(results[i][1]) for i in ok]
            rows.append({"level": level, "measure": round(float(np.median(measured)), 4) if ok else None,
                         "median_drop": round(float(np.median(clean - scores)), 4),
                         "median_score": round(float(np.median(scores)), 4),
                         "fnmr": round(float((scores < threshold).mean()), 4), "fta": len(base) - len(ok),
                         "flagged": round(float(np.mean(flagged)), 3) if ok else None})
        out[kind] = {"field": field, "limit_side": side, "levels": rows} | limits_from(rows, clean_fnmr)
    return {"pairs": len(base), "kinds": out}


def limits_from(rows: list[dict], clean_fnmr: float) -> dict[str, Any]:
    valid = [r for r in rows if r["measure"] is not None]
    values = [r["measure"] for r in valid]
    by_drop = crossing(values, [r["median_drop"] for r in valid], DROP)
    by_fnmr = crossing(values, [r["fnmr"] for r in valid], max(2 * clean_fnmr, valid[0]["fnmr"] * 2, 0.01))
    return {"limit_by_drop": by_drop, "limit_by_fnmr_x2": by_fnmr}


def check(scores: np.ndarray, quals: list, threshold: float) -> dict[str, Any]:
    per_pair = [sorted(set(issues(qa)) | set(issues(qb))) for qa, qb in quals]
    flagged = np.array([bool(i) for i in per_pair])
    rejected = scores < threshold
    counts: dict[str, int] = {}
    for names in per_pair:
        for n in names:
            counts[n] = counts.get(n, 0) + 1
    return {"pairs": len(scores), "flagged": int(flagged.sum()), "issue_counts": counts,
            "fnmr_flagged": round(float(rejected[flagged].mean()), 4) if flagged.any() else None,
            "fnmr_clean": round(float(rejected[~flagged].mean()), 4),
            "rejected_flagged": int((rejected & flagged).sum()), "rejected": int(rejected.sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=default_lfw_dir())
    parser.add_argument("--pairs", type=int, default=100, help="DevTrain genuine pairs degraded synthetically")
    parser.add_argument("--json", type=Path, help="write the full report here")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    settings = Settings.from_env(threads=2)
    detector, recognizer, _ = load_face_models(settings)
    threshold = load_calibration(settings.models_dir, "sface", settings.precision).threshold
    root = lfw_image_root(args.lfw)
    report: dict[str, Any] = {"threshold": threshold, "drop": DROP, "limits": vars(LIMITS)}
    for split in ("DevTrain", "DevTest"):
        pairs = [p for p in read_pairs(args.lfw / f"pairs{split}.txt") if p.genuine]
        images = embed_paths(detector, recognizer, root, sorted({p.path_a for p in pairs} | {p.path_b for p in pairs}))
        scores, quals = genuine_scores(images, pairs)
        fnmr = float((scores < threshold).mean())
        report[split] = {"genuine_pairs": len(scores), "fnmr": round(fnmr, 4),
                         "median_score": round(float(np.median(scores)), 4), "check": check(scores, quals, threshold)}
        if split == "DevTrain":
            report[split]["bins"] = binned(scores, quals, threshold)
            if args.pairs:
                report["synthetic"] = synthetic(detector, recognizer, root, pairs[:args.pairs], fnmr, threshold)
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
