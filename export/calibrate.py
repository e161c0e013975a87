"""Fit the decision threshold and PIC score densities of each recognizer (SFace, ArcFace, their fusion) on LFW View 1
DevTrain, per detector x recognizer x precision: models/calibration/<recognizer>-<precision>[-<detector>].json."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from edgefx.runtime.config import Settings, default_lfw_dir
from edgefx.faces.loading import RECOGNIZERS, load_detector, load_recognizer, recognizer_models
from edgefx.evaluation.lfw_eval import AlignedImages, align_images, embed_aligned, pair_scores
from edgefx.evaluation.lfw import accuracy_at, lfw_image_root, read_pairs
from edgefx.faces.decision import Calibration, calibration_path
from export.manifest import MODELS_DIR, model_entries, read_manifest, update_calibration
from export.sources import sha256_file

SPLITS = (("train", "pairsDevTrain.txt"), ("test", "pairsDevTest.txt"))


def _record(key: str, out: Path, model_hash: str, settings: Settings, detector: str, meta: dict) -> None:
    """The calibration's entry in the manifest (what `edgefx models` and the runtime read)."""
    threshold = json.loads(out.read_text())["threshold"]
    update_calibration(key, {"path": out.relative_to(MODELS_DIR).as_posix(), "detector": detector,
                             "recognizer": settings.recognizer,
                             "sha256": sha256_file(out), "model_sha256": model_hash, "flip_tta": settings.flip_tta,
                             "detector_precision": settings.detector_precision, "threshold": threshold,
                             "devtrain_accuracy": meta.get("devtrain_accuracy"),
                             "devtest_accuracy": meta.get("devtest_accuracy"),
                             **({"fusion_weight": meta["fusion_weight"]} if "fusion_weight" in meta else {})})


def _model_hash(recognizer: str, precision: str) -> str | None:
    """The ONNX sha256 of the recognizer's model (a fusion: `sface:<sha>+arcface:<sha>`); None if one is not built."""
    hashes = []
    for name in recognizer_models(recognizer):
        entry = model_entries().get(f"{name}/{precision}")
        if entry is None:
            return None
        hashes.append((name, entry["files"]["onnx"]["sha256"]))
    return hashes[0][1] if len(hashes) == 1 else "+".join(f"{name}:{sha}" for name, sha in hashes)


def _fusion_weight(settings: Settings) -> float | None:
    """The weight a fusion's scores are made with (its calibration is refit when it changes); None otherwise."""
    return settings.fusion_weight if settings.recognizer == "fusion" else None


def _threads() -> int | None:
    """EDGEFX_THREADS when set (a shared machine calibrates on 1 thread), else every core."""
    raw = os.environ.get("EDGEFX_THREADS", "")
    return int(raw) if raw.strip() else None


def calibrate(precision: str, lfw: Path | None = None, force: bool = False, detector: str = "mtcnn",
              recognizer: str = "sface", aligned: dict[str, AlignedImages] | None = None) -> Path | None:
    """Writes models/calibration/<recognizer>-<precision>[-<detector>].json; returns its path (None when it cannot).
    `aligned` caches the detector's crops per split, so that several recognizers share one detection pass."""
    out = calibration_path(MODELS_DIR, recognizer, precision, detector)
    key = out.stem
    lfw = Path(lfw) if lfw else default_lfw_dir()
    model_hash = _model_hash(recognizer, precision)
    if model_hash is None:
        print(f"calibrate {key}: model not built; skipped")
        return None
    recorded = read_manifest()["calibration"].get(key)
    settings = Settings(models_dir=MODELS_DIR, backend="auto", precision=precision, verify_hashes=True,
                        detector=detector, recognizer=recognizer, threads=_threads())
    # The tracked file is the record: it says which model and settings it was fitted for. A fresh clone keeps it
    # (and a build never rewrites it) as long as the built model's bytes are the ones it names.
    data = json.loads(out.read_text()) if out.is_file() else {}
    meta = data.get("meta", {})
    if (not force and meta.get("model_sha256") == model_hash and meta.get("flip_tta") == settings.flip_tta
            and meta.get("detector_precision") == settings.detector_precision
            and meta.get("detector", "mtcnn") == detector and meta.get("recognizer", data.get("model")) == recognizer
            and meta.get("fusion_weight") == _fusion_weight(settings)):
        if not (recorded and recorded.get("sha256") == sha256_file(out)):
            _record(key, out, model_hash, settings, detector, meta)
        print(f"calibrate {key}: up to date")
        return out
    if not (lfw / "pairsDevTrain.txt").is_file():
        if out.is_file():
            print(f"calibrate {key}: no LFW at {lfw}; keeping the tracked {out.name}")
            return out
        print(f"calibrate {key}: no LFW at {lfw} and no tracked calibration; skipped")
        return None
    t0 = time.perf_counter()
    cal = _fit(settings, lfw, model_hash, key, {} if aligned is None else aligned)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cal.to_dict(), indent=1) + "\n")
    _record(key, out, model_hash, settings, detector, cal.meta)
    print(f"calibrate {key}: threshold {cal.threshold:.4f}, DevTrain acc {cal.meta['devtrain_accuracy']:.4f}, "
          f"DevTest acc {cal.meta['devtest_accuracy']:.4f} ({time.perf_counter() - t0:.0f} s)")
    return out


def _fit(settings: Settings, lfw: Path, model_hash: str, key: str, aligned: dict[str, AlignedImages]) -> Calibration:
    """Threshold and densities on DevTrain; the DevTest accuracy at that threshold goes into the meta."""
    # The fastest installed backend (auto): its scores agree with onnxruntime's to ~1e-5 (the IR parity figures).
    recognizer = load_recognizer(settings)
    meta: dict[str, Any] = {"pairs": "LFW View 1 pairsDevTrain.txt", "recognizer": settings.recognizer,
                            "models": list(recognizer_models(settings.recognizer)), "model_sha256": model_hash,
                            "detector": settings.detector, "min_face_size": settings.min_face_size,
                            "flip_tta": settings.flip_tta, "detector_precision": settings.detector_precision}
    if _fusion_weight(settings) is not None:
        meta["fusion_weight"] = _fusion_weight(settings)
    cal = None
    for split, name in SPLITS:
        pairs = read_pairs(lfw / name)
        if split not in aligned:
            paths = sorted({p.path_a for p in pairs} | {p.path_b for p in pairs})
            aligned[split] = align_images(lfw_image_root(lfw), paths, load_detector(settings),
                                          label=f"{settings.detector} {split}")
        images = embed_aligned(aligned[split], recognizer)
        scores, labels, _, _ = pair_scores(images, pairs)
        if cal is None:
            cal = Calibration.fit(settings.recognizer, settings.precision, scores[labels == 1], scores[labels == 0],
                                  meta)
            meta["devtrain_accuracy"] = accuracy_at(scores, labels, cal.threshold)
            meta["devtrain_fta_images"] = int(images.failed.sum())
        else:
            meta["devtest_accuracy"] = accuracy_at(scores, labels, cal.threshold)
            meta["devtest_fta_images"] = int(images.failed.sum())
    assert cal is not None
    cal.meta = meta
    return cal


def main(precisions: tuple[str, ...] = ("fp32", "int8"), lfw: Path | None = None, force: bool = False,
         detectors: tuple[str, ...] = ("mtcnn", "yunet"), recognizers: tuple[str, ...] = RECOGNIZERS) -> None:
    for detector in detectors:
        aligned: dict[str, AlignedImages] = {}  # one detection pass per detector, shared by every recognizer
        for recognizer in recognizers:
            for precision in precisions:
                calibrate(precision, lfw, force, detector, recognizer, aligned)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m export.calibrate", description=__doc__)
    parser.add_argument("--detector", action="append", choices=["mtcnn", "yunet"])
    parser.add_argument("--recognizer", action="append", choices=list(RECOGNIZERS))
    parser.add_argument("--precision", action="append", choices=["fp32", "int8"])
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    main(tuple(args.precision or ("fp32", "int8")), force=args.force,
         detectors=tuple(args.detector or ("mtcnn", "yunet")), recognizers=tuple(args.recognizer or RECOGNIZERS))
