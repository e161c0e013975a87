"""Build-time MTCNN cascade (facenet-pytorch semantics) and 5-point alignment, for parity and calibration data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

# ArcFace 112x112 template, in the order left-eye-in-image, right-eye-in-image, nose, mouth-left, mouth-right.
ARCFACE_TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                             [41.5493, 92.3655], [70.7299, 92.2041]], dtype=np.float32)

Recorder = Callable[[str, np.ndarray], None]


class Cascade:
    """facenet-pytorch's detect_face for one RGB image, run on ONNX P/R/O-Nets that take raw RGB 0..255."""

    def __init__(self, models_dir: Path, precision: str = "fp32", threads: int = 2,
                 min_size: int = 20, thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709) -> None:
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.sessions = {name: ort.InferenceSession(str(models_dir / name / f"{precision}.onnx"), options,
                                                    providers=["CPUExecutionProvider"])
                         for name in ("pnet", "rnet", "onet")}
        self.min_size, self.thresholds, self.factor = min_size, thresholds, factor

    def _run(self, name: str, batch: np.ndarray, record: Recorder | None) -> list[np.ndarray]:
        if record is not None:
            record(name, batch)
        return self.sessions[name].run(None, {"input": batch})

    def detect(self, image: np.ndarray, record: Recorder | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Boxes [k, 5] (x1, y1, x2, y2, score) and landmarks [k, 5, 2] of every face in an RGB uint8 image."""
        h, w = image.shape[:2]
        scale = 12.0 / self.min_size
        min_len = min(h, w) * scale
        scales = []
        while min_len >= 12:
            scales.append(scale)
            scale *= self.factor
            min_len *= self.factor

        candidates = []
        for s in scales:
            size = (int(w * s + 1), int(h * s + 1))
            level = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            reg, prob = self._run("pnet", _nchw(level[None]), record)
            boxes = _grid_boxes(reg[0], prob[0, 1], s, self.thresholds[0])
            candidates.append(boxes[_nms(boxes[:, :5], 0.5, "union")])
        boxes = np.concatenate(candidates) if candidates else np.zeros((0, 9), np.float32)
        boxes = boxes[_nms(boxes[:, :5], 0.7, "union")]
        width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        boxes = np.stack([boxes[:, 0] + boxes[:, 5] * width, boxes[:, 1] + boxes[:, 6] * height,
                          boxes[:, 2] + boxes[:, 7] * width, boxes[:, 3] + boxes[:, 8] * height,
                          boxes[:, 4]], axis=1)
        boxes = _square(boxes)

        if len(boxes):
            boxes, crops = _crops(image, boxes, 24)
            if len(boxes):
                reg, prob = self._run("rnet", crops, record)
                keep = prob[:, 1] > self.thresholds[1]
                boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
                reg = reg[keep]
                pick = _nms(boxes, 0.7, "union")
                boxes = _square(_regress(boxes[pick], reg[pick]))

        points = np.zeros((0, 5, 2), np.float32)
        if len(boxes):
            boxes, crops = _crops(image, boxes, 48)
            if len(boxes):
                reg, marks, prob = self._run("onet", crops, record)
                keep = prob[:, 1] > self.thresholds[2]
                boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
                reg, marks = reg[keep], marks[keep]
                bw = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
                bh = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
                points = np.stack([bw * marks[:, :5] + boxes[:, 0:1] - 1,
                                   bh * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
                boxes = _regress(boxes, reg)
                pick = _nms(boxes, 0.7, "min")
                boxes, points = boxes[pick], points[pick]
        return boxes.astype(np.float32), points.astype(np.float32)


def _nchw(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2), dtype=np.float32)


def _grid_boxes(reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    ys, xs = np.nonzero(prob >= threshold)
    cells = np.stack([xs, ys], axis=1).astype(np.float32)
    q1 = np.floor((2 * cells + 1) / scale)
    q2 = np.floor((2 * cells + 12) / scale)
    return np.concatenate([q1, q2, prob[ys, xs][:, None], reg[:, ys, xs].T], axis=1).astype(np.float32)


def _nms(boxes: np.ndarray, threshold: float, method: str) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2, score = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], boxes[:, 4]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(score, kind="stable")
    keep = []
    while order.size:
        i, rest = order[-1], order[:-1]
        keep.append(i)
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = iw * ih
        overlap = inter / (np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter)
        order = rest[overlap <= threshold]
    return np.array(keep, dtype=np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    boxes = boxes.copy()
    h, w = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
    side = np.maximum(w, h)
    boxes[:, 0] += w * 0.5 - side * 0.5
    boxes[:, 1] += h * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    boxes = boxes.copy()
    w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
    boxes[:, :4] += reg * np.concatenate([w, h, w, h], axis=1)
    return boxes


def _crops(image: np.ndarray, boxes: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Crops of the boxes clipped to the image (facenet-pytorch `pad` semantics), resized to side x side."""
    h, w = image.shape[:2]
    ints = np.trunc(boxes[:, :4]).astype(np.int64)
    x, y = np.maximum(ints[:, 0], 1), np.maximum(ints[:, 1], 1)
    ex, ey = np.minimum(ints[:, 2], w), np.minimum(ints[:, 3], h)
    keep = (ey > y - 1) & (ex > x - 1)
    crops = [cv2.resize(image[y[k] - 1:ey[k], x[k] - 1:ex[k]], (side, side), interpolation=cv2.INTER_AREA)
             for k in np.nonzero(keep)[0]]
    batch = _nchw(np.stack(crops)) if crops else np.zeros((0, 3, side, side), np.float32)
    return boxes[keep], batch


def main_face(boxes: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """Landmarks of the largest detected face (LFW photos are centred on their subject), or None."""
    if len(boxes) == 0:
        return None
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return points[int(np.argmax(area))]


def align(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """112x112 RGB crop by the 5-point similarity transform onto the ArcFace template."""
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float32), ARCFACE_TEMPLATE, method=cv2.LMEDS)
    return cv2.warpAffine(image, matrix, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def aligned_faces(cascade: Cascade, paths: list[Path], record: Recorder | None = None) -> np.ndarray:
    """NCHW float32 raw-RGB aligned faces of the photos where a face is found (others are skipped)."""
    from export.lfw import load_rgb
    faces = []
    for path in paths:
        image = load_rgb(path)
        marks = main_face(*cascade.detect(image, record))
        if marks is not None:
            faces.append(align(image, marks))
    return _nchw(np.stack(faces)) if faces else np.zeros((0, 3, 112, 112), np.float32)
