"""MTCNN detector: the cascade's pieces, face selection, bad input, and agreement with facenet-pytorch on LFW."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edgefx.faces.detection import Face, select_face
from edgefx.faces.mtcnn import MTCNN, _area_resize_boxes, _area_resize_full, _integral_image, nms
from edgefx.runtime.errors import InvalidImage, NoFaceDetected

AGREEMENT_IMAGES = 200


def _box_iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def _face(x1: float, y1: float, x2: float, y2: float, score: float = 0.99) -> Face:
    return Face(np.array([x1, y1, x2, y2], np.float32), score, np.zeros((5, 2), np.float32))


def _rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None, path
    return np.ascontiguousarray(bgr[:, :, ::-1])


@pytest.fixture(scope="module")
def nets():  # type: ignore[no-untyped-def]
    pytest.importorskip("onnxruntime")
    from reference_mtcnn import detector_nets

    try:
        return detector_nets(threads=2)
    except ImportError as exc:  # models not built and torch absent, so they cannot be exported either
        pytest.skip(f"MTCNN models are not built and cannot be exported here: {exc}")


@pytest.fixture(scope="module")
def detector(nets) -> MTCNN:  # type: ignore[no-untyped-def]
    return MTCNN(*nets)


@pytest.fixture(scope="module")
def devtest_images(lfw_images: Path, devtest_pairs) -> list[Path]:  # type: ignore[no-untyped-def]
    names = dict.fromkeys(p for pair in devtest_pairs for p in (pair.path_a, pair.path_b))
    return [lfw_images / n for n in list(names)[:AGREEMENT_IMAGES]]


# --- pieces -----------------------------------------------------------------------------------

def _nms_brute_force(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str, one: float) -> list[int]:
    order = sorted(range(len(boxes)), key=lambda i: -scores[i])
    keep: list[int] = []
    for i in order:
        ok = True
        for j in keep:
            w = max(0.0, min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]) + one)
            h = max(0.0, min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]) + one)
            ai = (boxes[i, 2] - boxes[i, 0] + one) * (boxes[i, 3] - boxes[i, 1] + one)
            aj = (boxes[j, 2] - boxes[j, 0] + one) * (boxes[j, 3] - boxes[j, 1] + one)
            overlap = w * h / (min(ai, aj) if method == "min" else ai + aj - w * h)
            if overlap > threshold:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


@pytest.mark.parametrize("method,plus_one", [("union", False), ("union", True), ("min", True)])
def test_nms_equals_brute_force_greedy(method: str, plus_one: bool) -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        n = int(rng.integers(1, 80))
        xy = rng.uniform(0, 100, (n, 2))
        boxes = np.concatenate([xy, xy + rng.uniform(5, 40, (n, 2))], axis=1)
        scores = rng.uniform(0.6, 1.0, n)
        got = nms(boxes, scores, 0.5, method=method, plus_one=plus_one)  # type: ignore[arg-type]
        assert got.tolist() == _nms_brute_force(boxes, scores, 0.5, method, 1.0 if plus_one else 0.0)


def test_area_resize_is_block_mean_for_integer_factors() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (60, 90, 3), dtype=np.uint8)
    got = _area_resize_full(_integral_image(img), 20, 30)
    expected = img.astype(np.float64).reshape(20, 3, 30, 3, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_area_resize_matches_torch_adaptive_pooling() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (97, 83, 3), dtype=np.uint8)
    t = torch.from_numpy(img.astype(np.float32)).permute(2, 0, 1)[None]
    for out_h, out_w in ((69, 59), (12, 12), (150, 120)):
        expected = torch.nn.functional.interpolate(t, size=(out_h, out_w), mode="area")[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(_area_resize_full(_integral_image(img), out_h, out_w), expected, atol=2e-4)


def test_box_crops_zero_pad_outside_the_photo() -> None:
    img = np.full((40, 40, 3), 200, np.uint8)
    table = _integral_image(img)
    # The left half of this 20 px span lies outside the photo: black there, the photo's grey inside.
    crop = _area_resize_boxes(table, np.array([[-10, 10]]), np.array([[10, 30]]), 4)[0]
    np.testing.assert_allclose(crop[:, :2], 0.0)
    np.testing.assert_allclose(crop[:, 2:], 200.0, atol=1e-3)


def test_pyramid_scales(nets) -> None:  # type: ignore[no-untyped-def]
    det = MTCNN(*nets, min_face_size=20, factor=0.709)
    scales = det.scales(250, 250)
    assert scales[0] == pytest.approx(12 / 20)
    assert 250 * scales[-1] >= 12 > 250 * scales[-1] * 0.709
    assert len(MTCNN(*nets, min_face_size=60).scales(250, 250)) < len(scales)


@pytest.mark.parametrize("kwargs", [{"min_face_size": 5}, {"factor": 1.2}, {"thresholds": (0.6, 0.7)},
                                    {"pad": "reflect"}, {"min_face_fraction": 1.5}])
def test_bad_parameters_are_rejected(nets, kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        MTCNN(*nets, **kwargs)


@pytest.mark.parametrize("image", [np.zeros((50, 50), np.uint8), np.zeros((50, 50, 4), np.uint8),
                                   np.zeros((50, 50, 3), np.float32), np.zeros((0, 10, 3), np.uint8), b"jpeg"])
def test_bad_input_is_a_typed_error(detector: MTCNN, image: object) -> None:
    with pytest.raises(InvalidImage):
        detector.detect(image)  # type: ignore[arg-type]


def test_blank_and_tiny_images_have_no_face(detector: MTCNN) -> None:
    assert detector.detect(np.full((120, 160, 3), 128, np.uint8)) == []
    assert detector.detect(np.zeros((8, 8, 3), np.uint8)) == []  # smaller than P-Net's window


# --- selection --------------------------------------------------------------------------------

def test_select_face_prefers_the_central_face_over_a_slightly_larger_border_one() -> None:
    central = _face(100, 100, 150, 160)
    border = _face(0, 90, 60, 160)  # 1.4x the area, at the left border
    chosen, others = select_face([border, central], (250, 250, 3))
    assert chosen is central and others == [border]


def test_select_face_prefers_a_much_larger_face() -> None:
    small_central = _face(115, 115, 135, 140)
    big = _face(40, 60, 140, 190)  # 26x the area, a little off centre
    chosen, others = select_face([small_central, big], (250, 250, 3))
    assert chosen is big and others == [small_central]


def test_select_face_without_faces_raises() -> None:
    with pytest.raises(NoFaceDetected):
        select_face([], (250, 250, 3))


# --- real photos ------------------------------------------------------------------------------

def test_lfw_face_geometry(detector: MTCNN, devtest_images: list[Path]) -> None:
    for path in devtest_images[:10]:
        rgb = _rgb(path)
        faces = detector.detect(rgb)
        assert faces, path
        assert [f.score for f in faces] == sorted((f.score for f in faces), reverse=True)
        face, _ = select_face(faces, rgb.shape)
        x1, y1, x2, y2 = face.box
        assert x1 < 125 < x2 and y1 < 125 < y2, path  # LFW centres the subject
        (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = face.landmarks
        assert lex < nx < rex and lmx < rmx, path  # image-left before image-right
        assert max(ley, rey) < ny < min(lmy, rmy), path  # eyes above the nose above the mouth
        assert 60 <= face.size_px <= 200, path


def test_large_photo_is_searched_at_a_relative_min_face_and_mapped_back(nets, devtest_images) -> None:  # type: ignore[no-untyped-def]
    rgb = _rgb(devtest_images[0])
    face, _ = select_face(MTCNN(*nets, min_face_size=40).detect(rgb), rgb.shape)
    big = cv2.resize(rgb, (1000, 1000), interpolation=cv2.INTER_CUBIC)
    det = MTCNN(*nets, min_face_size=40, min_face_fraction=0.2)
    assert det.min_face(1000, 1000) == 200  # the photo is shrunk 4x before the cascade
    big_face, _ = select_face(det.detect(big), big.shape)
    assert _box_iou(big_face.box / 4, face.box) >= 0.9
    assert np.abs(big_face.landmarks / 4 - face.landmarks).max() <= 3.0


class _ExpectsNormalised:
    """Stands for a net exported without the in-graph (x - 127.5) / 128: undoes it, then runs ours."""

    def __init__(self, net) -> None:  # type: ignore[no-untyped-def]
        self.net, self.input_names, self.output_names = net, net.input_names, net.output_names

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.net.run({k: v * np.float32(128.0) + np.float32(127.5) for k, v in feeds.items()})


def test_normalize_flag_feeds_normalised_pixels(nets, devtest_images) -> None:  # type: ignore[no-untyped-def]
    rgb = _rgb(devtest_images[1])
    plain = MTCNN(*nets).detect(rgb)
    wrapped = MTCNN(*(_ExpectsNormalised(n) for n in nets), normalize=True).detect(rgb)
    assert len(plain) == len(wrapped) > 0
    for a, b in zip(plain, wrapped):
        np.testing.assert_allclose(a.box, b.box, atol=0.05)
        np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.05)


def test_detection_is_deterministic(detector: MTCNN, devtest_images: list[Path]) -> None:
    rgb = _rgb(devtest_images[0])
    first, second = detector.detect(rgb), detector.detect(rgb)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert np.array_equal(a.box, b.box) and np.array_equal(a.landmarks, b.landmarks) and a.score == b.score


@pytest.fixture(scope="module")
def reference_faces(devtest_images: list[Path]) -> list[list[Face]]:
    """facenet-pytorch's detections of the agreement images, computed once."""
    pytest.importorskip("torch")
    from reference_mtcnn import ReferenceUnavailable, reference_mtcnn

    try:
        reference = reference_mtcnn(min_face_size=20, thresholds=(0.6, 0.7, 0.7), factor=0.709)
    except ReferenceUnavailable as exc:
        pytest.skip(f"facenet-pytorch reference unavailable: {exc}")
    out = []
    for path in devtest_images:
        boxes, probs, points = reference.detect(_rgb(path), landmarks=True)
        out.append([] if boxes is None else [Face(np.asarray(b, np.float32), float(p), np.asarray(pt, np.float32))
                                             for b, p, pt in zip(boxes, probs, points)])
    return out


def _agreement(detector: MTCNN, devtest_images: list[Path], reference: list[list[Face]]) -> dict[str, float]:
    same, ious, landmark_errors = [], [], []
    for path, theirs in zip(devtest_images, reference):
        rgb = _rgb(path)
        ours = detector.detect(rgb)
        if not theirs or not ours:
            same.append(not theirs and not ours)
            continue
        ref_face, _ = select_face(theirs, rgb.shape)
        our_face, _ = select_face(ours, rgb.shape)
        iou = _box_iou(ref_face.box, our_face.box)
        same.append(iou >= 0.5)
        ious.append(iou)
        landmark_errors.append(float(np.abs(ref_face.landmarks - our_face.landmarks).max()))
    ious_a, errs = np.array(ious), np.array(landmark_errors)
    stats = {"n": len(devtest_images), "same_face": float(np.mean(same)), "iou_median": float(np.median(ious_a)),
             "iou_min": float(ious_a.min()), "iou_ge_095": float(np.mean(ious_a >= 0.95)),
             "landmark_max_px": float(errs.max()), "landmark_le_2px": float(np.mean(errs <= 2.0))}
    print(f"agreement with facenet-pytorch (pad={detector.pad}):", {k: round(v, 4) for k, v in stats.items()})
    return stats


def test_agrees_with_facenet_pytorch_on_lfw_devtest(nets, devtest_images, reference_faces) -> None:  # type: ignore[no-untyped-def]
    """pad='clip' is facenet-pytorch's own crop rule, so this compares the cascade itself.

    The measured residue (1 of 200 at IoU 0.947 when this was written) is O-Net scores that
    saturate at 1.0 in float32: the nets get identical inputs (to 1e-7), and which of two
    near-duplicate boxes survives the final NMS then hangs on the last bit of the score.
    """
    stats = _agreement(MTCNN(*nets, pad="clip"), devtest_images, reference_faces)
    assert stats["n"] == AGREEMENT_IMAGES
    assert stats["same_face"] == 1.0
    assert stats["iou_median"] >= 0.99
    assert stats["iou_ge_095"] >= 0.99
    assert stats["landmark_le_2px"] >= 0.99


def test_zero_padding_default_stays_close_to_facenet_pytorch(detector, devtest_images, reference_faces) -> None:  # type: ignore[no-untyped-def]
    """The default pads out-of-photo crops with black (the original MTCNN) instead of stretching
    the in-photo part; that moves only faces cut by the border, so the subject stays the same."""
    assert detector.pad == "zero"
    stats = _agreement(detector, devtest_images, reference_faces)
    assert stats["same_face"] >= 0.99
    assert stats["iou_ge_095"] >= 0.97
    assert stats["landmark_le_2px"] >= 0.97


def test_detect_command_prints_faces_and_latency(devtest_images, capsys) -> None:  # type: ignore[no-untyped-def]
    import argparse
    import json

    from edgefx.cli.detect import register
    from edgefx.runtime.errors import ModelMissing

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["detect", str(devtest_images[0]), "--json", "--repeat", "3",
                              "--backend", "onnxruntime", "--threads", "2"])
    try:
        assert args.func(args) == 0
    except ModelMissing as exc:
        pytest.skip(f"models are not built: {exc}")
    out = json.loads(capsys.readouterr().out)
    (row,) = out["results"]
    assert row["faces"] and row["selected"] in range(len(row["faces"]))
    assert row["detect_ms"]["runs"] == 3 and row["detect_ms"]["median"] > 0
    nets = row["nets"]
    assert set(nets) == {"pnet", "rnet", "onet"} and all(n["ms"] > 0 for n in nets.values())
    assert nets["rnet"]["rows"] >= nets["onet"]["rows"] >= 1  # the cascade narrows; a found face went through O-Net
    assert sum(n["ms"] for n in nets.values()) < row["detect_ms"]["median"] * 3  # mean vs median: loose but bounded
