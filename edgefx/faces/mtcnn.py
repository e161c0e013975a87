"""MTCNN face detection (P-Net, R-Net, O-Net cascade) on the exported nets: faces with boxes and 5 landmarks."""

from __future__ import annotations

from typing import Literal, Sequence

import cv2
import numpy as np

from edgefx.faces.detection import Face, Net, check_image

PNET_CELL = 12  # P-Net sees 12x12 windows ...
PNET_STRIDE = 2  # ... every 2 pixels of the rescaled image.
RNET_SIZE = 24
ONET_SIZE = 48
PNET_NMS_PER_SCALE = 0.5
PNET_NMS_ACROSS_SCALES = 0.7
RNET_NMS = 0.7
ONET_NMS = 0.7  # "Min" overlap: a box mostly inside a better one is a duplicate.


class MTCNN:
    """The three-stage MTCNN cascade (Zhang et al. 2016), numerically following facenet-pytorch 2.6.0.

    The smallest face searched is `max(min_face_size, min_face_fraction * shorter side)` pixels; when
    that is at least twice O-Net's 48 px, the photo is first shrunk by an integer factor that keeps
    such a face >= 48 px, so large photos cost about what small ones do (exactly facenet-pytorch
    below that, which covers LFW's 250x250 at any min_face_size < 96).
    `pad` chooses how R-Net/O-Net crops that stick out of the photo are filled: "zero" pads with black
    (the original MTCNN), "clip" crops the in-photo part and stretches it (facenet-pytorch).
    The nets built by `export/mtcnn.py` normalise in-graph and take raw RGB 0..255; `normalize=True`
    applies facenet-pytorch's (x - 127.5) / 128 here instead, for nets exported without it.
    `detect` keeps no state between calls: one instance can serve several threads if its nets can.
    """

    def __init__(self, pnet: Net, rnet: Net, onet: Net, *, min_face_size: float = 20.0, factor: float = 0.709,
                 thresholds: Sequence[float] = (0.6, 0.7, 0.7), pad: Literal["zero", "clip"] = "zero",
                 normalize: bool = False, min_face_fraction: float = 0.0) -> None:
        if min_face_size < PNET_CELL:
            raise ValueError(f"min_face_size must be >= {PNET_CELL} px (P-Net's window), got {min_face_size}")
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        if len(thresholds) != 3 or not all(0.0 <= t <= 1.0 for t in thresholds):
            raise ValueError(f"thresholds must be three probabilities, got {thresholds}")
        if not 0.0 <= min_face_fraction <= 1.0:
            raise ValueError(f"min_face_fraction must be in [0, 1], got {min_face_fraction}")
        if pad not in ("zero", "clip"):
            raise ValueError(f"pad must be 'zero' or 'clip', got {pad!r}")
        self.pnet, self.rnet, self.onet = pnet, rnet, onet
        self.min_face_size = float(min_face_size)
        self.min_face_fraction = float(min_face_fraction)
        self.factor = float(factor)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.pad = pad
        self.normalize = normalize

    @property
    def backend(self) -> str:
        return str(getattr(self.pnet, "backend", "?"))

    def warm_up(self, photo: np.ndarray) -> None:
        """Every net once at load, so that the first detection does not pay for lazy initialisation."""
        self.detect(photo)  # P-Net; a featureless photo gives R-Net nothing
        # R-Net and O-Net run in fixed-size chunks (edgefx.backend.FIXED_BATCH): one call each makes their buffers.
        for net, size in ((self.rnet, RNET_SIZE), (self.onet, ONET_SIZE)):
            net.run({net.input_names[0]: np.zeros((1, 3, size, size), np.float32)})

    def min_face(self, height: int, width: int) -> float:
        """The smallest face searched in a height x width photo, in pixels."""
        return max(self.min_face_size, self.min_face_fraction * min(height, width))

    def scales(self, height: int, width: int, min_face: float | None = None) -> list[float]:
        """Pyramid scales: the smallest face maps to P-Net's 12 px, then shrink by `factor` while >= 12 px."""
        m = PNET_CELL / (min_face or self.min_face(height, width))
        side = min(height, width) * m
        scales: list[float] = []
        scale = m
        while side >= PNET_CELL:
            scales.append(scale)
            scale *= self.factor
            side *= self.factor
        return scales

    def detect(self, rgb: np.ndarray) -> list[Face]:
        """All faces in an RGB uint8 HxWx3 photo, best score first."""
        check_image(rgb)
        height, width = rgb.shape[:2]
        min_face = self.min_face(height, width)
        shrink = int(min_face // ONET_SIZE)  # the smallest face keeps >= 48 px for O-Net
        work = rgb
        if shrink > 1:
            work = cv2.resize(rgb, (max(1, width // shrink), max(1, height // shrink)), interpolation=cv2.INTER_AREA)
        work_h, work_w = work.shape[:2]
        integral = _integral_image(work)

        boxes = self._propose(integral, work_h, work_w, min_face * work_h / height)
        if len(boxes) == 0:
            return []
        boxes = self._refine(integral, boxes)
        if len(boxes) == 0:
            return []
        boxes, scores, points = self._output(integral, boxes)
        if shrink > 1:
            to_photo = np.array([width / work_w, height / work_h])
            boxes = boxes * np.tile(to_photo, 2)
            points = points * to_photo
        order = np.argsort(-scores, kind="stable")
        return [Face(box=boxes[i].astype(np.float32), score=float(scores[i]),
                     landmarks=points[i].astype(np.float32)) for i in order]

    # Stage 1: P-Net on every pyramid level -> square candidate boxes (x1, y1, x2, y2, score).
    def _propose(self, integral: np.ndarray, height: int, width: int, min_face: float) -> np.ndarray:
        per_scale = []
        for scale in self.scales(height, width, min_face):
            out_h, out_w = int(height * scale + 1), int(width * scale + 1)
            level = _area_resize_full(integral, out_h, out_w)
            reg, prob = _by_channels(self._run(self.pnet, level[None].transpose(0, 3, 1, 2)), (4, 2))
            cand = _pnet_boxes(reg[0], prob[0, 1], np.float32(scale), self.thresholds[0])
            if len(cand):
                per_scale.append(cand[nms(cand[:, :4], cand[:, 4], PNET_NMS_PER_SCALE)])
        if not per_scale:
            return np.zeros((0, 5), np.float32)
        cand = np.concatenate(per_scale)
        cand = cand[nms(cand[:, :4], cand[:, 4], PNET_NMS_ACROSS_SCALES)]
        # P-Net's regression is relative to the box side without the +1 pixel convention.
        side = (cand[:, 2:4] - cand[:, 0:2])[:, [0, 1, 0, 1]]
        boxes = np.concatenate([cand[:, :4] + cand[:, 5:9] * side, cand[:, 4:5]], axis=1)
        return _square(boxes)

    # Stage 2: R-Net on all candidates in one batch -> fewer, better boxes.
    def _refine(self, integral: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        crops = self._crops(integral, boxes, RNET_SIZE)
        reg, prob = _by_channels(self._run(self.rnet, crops), (4, 2))
        keep = prob[:, 1] > self.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
        reg = reg[keep]
        pick = nms(boxes[:, :4], boxes[:, 4], RNET_NMS)
        return _square(_regress(boxes[pick], reg[pick]))

    # Stage 3: O-Net on all survivors in one batch -> final boxes, scores and landmarks.
    def _output(self, integral: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        crops = self._crops(integral, boxes, ONET_SIZE)
        reg, marks, prob = _by_channels(self._run(self.onet, crops), (4, 10, 2))
        keep = prob[:, 1] > self.thresholds[2]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
        reg, marks = reg[keep], marks[keep]
        size = boxes[:, 2:4] - boxes[:, 0:2] + 1
        points = np.stack([size[:, None, 0] * marks[:, 0:5] + boxes[:, None, 0] - 1,
                           size[:, None, 1] * marks[:, 5:10] + boxes[:, None, 1] - 1], axis=2)
        boxes = _regress(boxes, reg)
        pick = nms(boxes[:, :4], boxes[:, 4], ONET_NMS, method="min", plus_one=True)
        return boxes[pick, :4], boxes[pick, 4], points[pick]

    def _crops(self, integral: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
        """All boxes cut out and area-resized to size x size, as one NCHW float32 batch."""
        height, width = integral.shape[0] - 1, integral.shape[1] - 1
        # Pixel spans [x1 - 1, x2) after truncation: the MATLAB-era convention both references use.
        start = np.trunc(boxes[:, 0:2]).astype(np.int64) - 1
        stop = np.trunc(boxes[:, 2:4]).astype(np.int64)
        if self.pad == "clip":
            start = np.maximum(start, 0)
            stop = np.minimum(stop, [width, height])
        stop = np.maximum(stop, start + 1)  # a degenerate box still gives a (black or 1 px) crop
        crops = _area_resize_boxes(integral, start, stop, size)
        return crops.transpose(0, 3, 1, 2)

    def _run(self, net: Net, batch: np.ndarray) -> list[np.ndarray]:
        if self.normalize:
            batch = (batch - np.float32(127.5)) * np.float32(0.0078125)
        return net.run({net.input_names[0]: np.ascontiguousarray(batch, dtype=np.float32)})


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: Literal["union", "min"] = "union",
        plus_one: bool = False) -> np.ndarray:
    """Greedy non-maximum suppression; indices of the kept boxes, best score first.

    Greedy NMS is sequential by definition; the loop runs once per *kept* box, each step vectorised.
    """
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if method == "union" and not plus_one:
        # OpenCV's C++ NMS: same greedy rule and stable best-first order, ~10x faster than the loop below.
        # (It keeps only scores > 0; every MTCNN candidate has passed a threshold of at least that.)
        xywh = np.concatenate([boxes[:, 0:2], boxes[:, 2:4] - boxes[:, 0:2]], axis=1).astype(np.float64)
        keep = cv2.dnn.NMSBoxes(xywh, scores.astype(np.float32), 0.0, float(threshold))
        return np.asarray(keep, np.int64).reshape(-1)
    one = 1.0 if plus_one else 0.0
    x1, y1, x2, y2 = (boxes[:, i].astype(np.float64) for i in range(4))
    area = (x2 - x1 + one) * (y2 - y1 + one)
    remaining = np.argsort(-scores, kind="stable")
    keep = []
    while remaining.size:
        i, rest = remaining[0], remaining[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        overlap = inter / np.maximum(denom, 1e-12)
        remaining = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def _integral_image(rgb: np.ndarray) -> np.ndarray:
    """(H+1) x (W+1) x 3 float64 summed-area table with a zero first row and column."""
    return cv2.integral(np.ascontiguousarray(rgb), sdepth=cv2.CV_64F)


def _area_windows(length: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Start/stop offsets of area-resampling windows, as torch's adaptive average pooling cuts them."""
    i = np.arange(size, dtype=np.int64)
    length = np.asarray(length, np.int64)[..., None]
    return (i * length) // size, -((-(i + 1) * length) // size)


def _area_resize_full(integral: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """The whole photo area-resampled to out_h x out_w (HxWx3 float32)."""
    height, width = integral.shape[0] - 1, integral.shape[1] - 1
    y0, y1 = _area_windows(np.int64(height), out_h)
    x0, x1 = _area_windows(np.int64(width), out_w)
    # Windows are separable: difference whole rows first, then columns of the (out_h, W+1) result.
    # float32 from here: sums below 2**24 are exact; larger ones (wide photos, coarse levels) carry a
    # relative error of 6e-8, far below a grey level once divided by the window area.
    rows = (integral.take(y1, axis=0) - integral.take(y0, axis=0)).astype(np.float32)
    sums = rows.take(x1, axis=1) - rows.take(x0, axis=1)
    inv_counts = (1.0 / ((y1 - y0)[:, None] * (x1 - x0)[None, :])).astype(np.float32)
    return sums * inv_counts[..., None]


def _area_resize_boxes(integral: np.ndarray, start: np.ndarray, stop: np.ndarray, size: int) -> np.ndarray:
    """N pixel spans [start, stop) (x, y; may leave the photo: outside counts as black) -> N x size x size x 3."""
    height, width = integral.shape[0] - 1, integral.shape[1] - 1
    wx0, wx1 = _area_windows(stop[:, 0] - start[:, 0], size)
    wy0, wy1 = _area_windows(stop[:, 1] - start[:, 1], size)
    counts = ((wy1 - wy0)[:, :, None] * (wx1 - wx0)[:, None, :]).astype(np.float64)
    stride = width + 1
    x0 = np.clip(start[:, 0:1] + wx0, 0, width)[:, None, :]
    x1 = np.clip(start[:, 0:1] + wx1, 0, width)[:, None, :]
    y0 = np.clip(start[:, 1:2] + wy0, 0, height)[:, :, None] * stride
    y1 = np.clip(start[:, 1:2] + wy1, 0, height)[:, :, None] * stride
    table = integral.reshape(-1, 3)
    sums = (table.take((y1 + x1).ravel(), axis=0) - table.take((y0 + x1).ravel(), axis=0)
            - table.take((y1 + x0).ravel(), axis=0) + table.take((y0 + x0).ravel(), axis=0))
    return (sums.reshape(len(start), size, size, 3) / counts[..., None]).astype(np.float32)


def _by_channels(outputs: list[np.ndarray], channels: tuple[int, ...]) -> list[np.ndarray]:
    """Net outputs in the requested order, recognised by their channel count (4 box, 10 landmark, 2 class)."""
    by_size = {o.shape[1]: o for o in outputs}
    missing = [c for c in channels if c not in by_size]
    if missing or len(by_size) != len(outputs):
        raise ValueError(f"unexpected MTCNN outputs {[o.shape for o in outputs]}, need channels {channels}")
    return [by_size[c].astype(np.float32, copy=False) for c in channels]


def _pnet_boxes(reg: np.ndarray, face_prob: np.ndarray, scale: np.float32, threshold: float) -> np.ndarray:
    """P-Net map cells above threshold -> rows (x1, y1, x2, y2, score, dx1, dy1, dx2, dy2) in photo pixels."""
    ys, xs = np.nonzero(face_prob >= threshold)
    if ys.size == 0:
        return np.zeros((0, 9), np.float32)
    cell = np.stack([xs, ys], axis=1).astype(np.float32)
    top_left = np.floor((PNET_STRIDE * cell + 1) / scale)
    bottom_right = np.floor((PNET_STRIDE * cell + PNET_CELL) / scale)
    return np.concatenate([top_left, bottom_right, face_prob[ys, xs, None], reg[:, ys, xs].T], axis=1)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """Apply R-/O-Net box regression (offsets relative to the side with the +1 pixel convention)."""
    side = (boxes[:, 2:4] - boxes[:, 0:2] + 1)[:, [0, 1, 0, 1]]
    out = boxes.copy()
    out[:, :4] = boxes[:, :4] + reg * side
    return out


def _square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre."""
    size = boxes[:, 2:4] - boxes[:, 0:2]
    side = size.max(axis=1, keepdims=True)
    out = boxes.copy()
    out[:, 0:2] = boxes[:, 0:2] + size * 0.5 - side * 0.5
    out[:, 2:4] = out[:, 0:2] + side
    return out
