"""Does a different crop of the same detected face verify better? LFW View 1 accuracy of test-time variants.

Evidence for issue 3's accuracy target, not part of the product. Every variant embeds crops of the very faces the
product detects (same MTCNN, same selection), changed in one way: the mirror image, a template zoomed out or in,
shifted up or down, or landmarks re-read by a second O-Net pass on the final box; "+ base" sums the unit embeddings
with the default crop's. Each variant gets its own threshold, calibrated on DevTrain exactly as the product's
(`edgefx.faces.decision.best_accuracy_threshold`); DevTest is then scored at that threshold and, as an optimistic bound, at
the best threshold for DevTest itself.

    .venv/bin/python docs/experiments/alignment_variants.py [--lfw DIR]     # ~5 min on 2 cores
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from edgefx.evaluation.lfw import accuracy_at, lfw_image_root, read_pairs
from edgefx.faces.align import ARCFACE_TEMPLATE, TEMPLATE_SIZE, align, similarity_transform
from edgefx.faces.decision import best_accuracy_threshold
from edgefx.faces.detection import Face, select_face
from edgefx.faces.loading import load_face_models
from edgefx.faces.mtcnn import ONET_SIZE, MTCNN, _by_channels, _integral_image, _square
from edgefx.faces.recognizer import l2_normalize
from edgefx.runtime.config import Settings, default_lfw_dir
from edgefx.runtime.image import read_image

SPLITS = ("DevTrain", "DevTest")


def refined_landmarks(detector: MTCNN, photo: np.ndarray, face: Face) -> np.ndarray:
    """O-Net's landmarks read again on the face's final (regressed, squared) box."""
    box = _square(np.concatenate([face.box[None].astype(np.float64), [[face.score]]], axis=1))
    crops = detector._crops(_integral_image(photo), box, ONET_SIZE)
    _, marks, _ = _by_channels(detector._run(detector.onet, crops), (4, 10, 2))
    size = box[0, 2:4] - box[0, 0:2] + 1
    return np.stack([size[0] * marks[0, 0:5] + box[0, 0] - 1, size[1] * marks[0, 5:10] + box[0, 1] - 1], axis=1)


def warp(photo: np.ndarray, landmarks: np.ndarray, scale: float = 1.0, shift_y: float = 0.0) -> np.ndarray:
    centre = TEMPLATE_SIZE / 2.0
    dst = (ARCFACE_TEMPLATE - centre) * scale + centre + np.array([0.0, shift_y], np.float32)
    return cv2.warpAffine(photo, similarity_transform(landmarks, dst), (TEMPLATE_SIZE, TEMPLATE_SIZE),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=default_lfw_dir())
    args = parser.parse_args()
    detector, recognizer, _ = load_face_models(Settings.from_env())
    root = lfw_image_root(args.lfw)
    variants = {"base": {}, "flip": {}, "zoom out 0.96": {}, "zoom in 1.04": {}, "zoom out 0.92": {},
                "zoom in 1.08": {}, "up 2 px": {}, "down 2 px": {}, "O-Net landmarks re-read": {}}
    labels, index = {}, {}
    for split in SPLITS:
        pairs = read_pairs(args.lfw / f"pairs{split}.txt")
        paths = sorted({p.path_a for p in pairs} | {p.path_b for p in pairs})
        crops: dict[str, list[np.ndarray]] = {name: [] for name in variants}
        found = {}
        for rel in paths:
            photo = read_image(str(root / rel))
            faces = detector.detect(photo)
            if faces:
                face, _ = select_face(faces, photo.shape)
                found[rel] = (photo, face.landmarks, refined_landmarks(detector, photo, face))
            else:
                found[rel] = (photo, None, None)
        # A failure to acquire (1 DevTrain image) takes the median landmarks, as `edgefx eval lfw` does.
        median = np.median(np.stack([lm for _, lm, _ in found.values() if lm is not None]), axis=0)
        for rel in paths:
            photo, landmarks, refined = found[rel]
            if landmarks is None:
                landmarks = refined = median
            base = align(photo, landmarks)[0]
            for name, crop in (("base", base), ("flip", base[:, ::-1]), ("zoom out 0.96", warp(photo, landmarks, 0.96)),
                               ("zoom in 1.04", warp(photo, landmarks, 1.04)),
                               ("zoom out 0.92", warp(photo, landmarks, 0.92)),
                               ("zoom in 1.08", warp(photo, landmarks, 1.08)), ("up 2 px", warp(photo, landmarks, 1, -2)),
                               ("down 2 px", warp(photo, landmarks, 1, 2)),
                               ("O-Net landmarks re-read", align(photo, refined)[0])):
                crops[name].append(crop)
        for name in variants:
            variants[name][split] = recognizer.embed(np.stack(crops[name]))
        where = {p: i for i, p in enumerate(paths)}
        index[split] = (np.array([where[p.path_a] for p in pairs]), np.array([where[p.path_b] for p in pairs]))
        labels[split] = np.array([p.genuine for p in pairs], dtype=np.int64)

    def scores(emb: np.ndarray, split: str) -> np.ndarray:
        a, b = index[split]
        emb = l2_normalize(emb)
        return np.einsum("ij,ij->i", emb[a], emb[b]).astype(np.float64)

    rows = [(name, v) for name, v in variants.items()]
    rows += [(f"{name} + base", {s: l2_normalize(v[s]) + l2_normalize(variants["base"][s]) for s in SPLITS})
             for name, v in variants.items() if name != "base"]
    print(f"{'variant':34s} {'threshold':>9s} {'DevTrain':>8s} {'DevTest':>8s} {'DevTest, best threshold':>24s}")
    for name, emb in rows:
        train, test = scores(emb["DevTrain"], "DevTrain"), scores(emb["DevTest"], "DevTest")
        y_train, y_test = labels["DevTrain"], labels["DevTest"]
        t = best_accuracy_threshold(train[y_train == 1], train[y_train == 0])
        oracle = best_accuracy_threshold(test[y_test == 1], test[y_test == 0])
        print(f"{name:34s} {t:9.4f} {accuracy_at(train, y_train, t):8.2%} {accuracy_at(test, y_test, t):8.2%} "
              f"{accuracy_at(test, y_test, oracle):24.2%}", flush=True)


if __name__ == "__main__":
    main()
