"""Fit the decision threshold and PIC score densities of SFace on LFW View 1 DevTrain, per precision."""

from __future__ import annotations

import json
import time
from pathlib import Path


from edgefx.runtime.config import Settings, default_lfw_dir
from edgefx.faces.loading import load_face_models
from edgefx.evaluation.lfw_eval import embed_images, pair_scores
from edgefx.evaluation.lfw import accuracy_at, lfw_image_root, read_pairs
from edgefx.faces.decision import Calibration, calibration_path
from export.manifest import MODELS_DIR, model_entries, read_manifest, update_calibration
from export.sources import sha256_file


def calibrate(precision: str, lfw: Path | None = None, force: bool = False, detector: str = "mtcnn") -> Path | None:
    """Writes models/calibration/sface-<precision>[-<detector>].json; returns its path (None when LFW is absent)."""
    out = calibration_path(MODELS_DIR, "sface", precision, detector)
    key = out.stem
    lfw = Path(lfw) if lfw else default_lfw_dir()
    model_entry = model_entries().get(f"sface/{precision}")
    if model_entry is None:
        print(f"calibrate {key}: model not built; skipped")
        return None
    model_hash = model_entry["files"]["onnx"]["sha256"]
    recorded = read_manifest()["calibration"].get(key)
    settings = Settings(models_dir=MODELS_DIR, backend="auto", precision=precision, verify_hashes=True,
                        detector=detector)
    if (not force and out.is_file() and recorded and recorded.get("sha256") == sha256_file(out)
            and recorded.get("model_sha256") == model_hash and recorded.get("flip_tta") == settings.flip_tta
            and recorded.get("detector_precision") == settings.detector_precision
            and recorded.get("detector", "mtcnn") == detector):
        print(f"calibrate {key}: up to date")
        return out
    train_file = lfw / "pairsDevTrain.txt"
    if not train_file.is_file():
        if out.is_file():
            print(f"calibrate {key}: no LFW at {lfw}; keeping the tracked {out.name}")
            return out
        print(f"calibrate {key}: no LFW at {lfw} and no tracked calibration; skipped")
        return None
    t0 = time.perf_counter()
    # The fastest installed backend (auto): its scores agree with onnxruntime's to ~1e-5 (the IR parity figures).
    face_detector, recognizer, _ = load_face_models(settings)
    meta: dict[str, object] = {"pairs": "LFW View 1 pairsDevTrain.txt", "model_sha256": model_hash, "detector": detector,
                               "min_face_size": settings.min_face_size, "flip_tta": settings.flip_tta,
                               "detector_precision": settings.detector_precision}
    for split, name in (("train", "pairsDevTrain.txt"), ("test", "pairsDevTest.txt")):
        pairs = read_pairs(lfw / name)
        paths = sorted({p.path_a for p in pairs} | {p.path_b for p in pairs})
        images = embed_images(lfw_image_root(lfw), paths, face_detector, recognizer, label=f"{key} {split}")
        scores, labels, _, fta = pair_scores(images, pairs)
        if split == "train":
            cal = Calibration.fit("sface", precision, scores[labels == 1], scores[labels == 0], meta)
            meta["devtrain_accuracy"] = accuracy_at(scores, labels, cal.threshold)
            meta["devtrain_fta_images"] = int(images.failed.sum())
        else:
            meta["devtest_accuracy"] = accuracy_at(scores, labels, cal.threshold)
            meta["devtest_fta_images"] = int(images.failed.sum())
    cal.meta = meta
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(cal.to_dict(), indent=1) + "\n")
    update_calibration(key, {"path": out.relative_to(MODELS_DIR).as_posix(), "detector": detector,
                                              "sha256": sha256_file(out), "model_sha256": model_hash,
                                              "flip_tta": settings.flip_tta,
                                              "detector_precision": settings.detector_precision,
                                              "threshold": cal.threshold,
                                              "devtrain_accuracy": meta["devtrain_accuracy"],
                                              "devtest_accuracy": meta["devtest_accuracy"]})
    print(f"calibrate {key}: threshold {cal.threshold:.4f}, DevTrain acc {meta['devtrain_accuracy']:.4f}, "
          f"DevTest acc {meta['devtest_accuracy']:.4f} ({time.perf_counter() - t0:.0f} s)")
    return out


def main(precisions: tuple[str, ...] = ("fp32", "int8"), lfw: Path | None = None, force: bool = False) -> None:
    for detector in ("mtcnn", "yunet"):
        for precision in precisions:
            calibrate(precision, lfw, force, detector)


if __name__ == "__main__":
    main()
