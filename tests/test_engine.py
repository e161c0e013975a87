"""The verification core on real LFW pairs: decisions, determinism, typed errors, CLI JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from imagegen import exif_orientation_jpeg

from edgefx.runtime.errors import ImageTooSmall, InvalidImage, NoFaceDetected, UnsupportedFormat


def test_matched_pair_matches(engine, matched_pair_bytes) -> None:  # type: ignore[no-untyped-def]
    r = engine.verify(*matched_pair_bytes)
    assert r.match and r.score > r.threshold and r.confidence > 0.5


def test_mismatched_pair_does_not_match(engine, mismatched_pair_bytes) -> None:  # type: ignore[no-untyped-def]
    r = engine.verify(*mismatched_pair_bytes)
    assert not r.match and r.score < r.threshold and r.confidence > 0.5


def test_decision_is_repeatable(engine, matched_pair_bytes) -> None:  # type: ignore[no-untyped-def]
    first = engine.verify(*matched_pair_bytes)
    for _ in range(3):
        again = engine.verify(*matched_pair_bytes)
        assert again.match == first.match and again.score == pytest.approx(first.score, abs=1e-6)


def test_result_json_has_the_promised_keys(engine, matched_pair_bytes) -> None:  # type: ignore[no-untyped-def]
    d = engine.verify(*matched_pair_bytes).to_dict()
    assert {"match", "score", "threshold", "confidence", "faces", "timings_ms"} <= set(d)
    assert len(d["faces"]) == 2 and len(d["faces"][0]["landmarks"]) == 5
    assert {"decode", "detect", "align", "embed", "decide", "total"} <= set(d["timings_ms"])
    json.dumps(d)


def test_bad_inputs_get_typed_errors(engine, matched_pair_bytes) -> None:  # type: ignore[no-untyped-def]
    good = matched_pair_bytes[0]
    with pytest.raises(InvalidImage):
        engine.verify(b"", good)
    with pytest.raises(UnsupportedFormat):
        engine.verify(b"GIF89a" + b"\x00" * 100, good)
    with pytest.raises(InvalidImage):
        engine.verify(good[: len(good) // 2], good)
    with pytest.raises(ImageTooSmall):
        engine.verify(cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes(), good)
    blank = cv2.imencode(".jpg", np.full((250, 250, 3), 128, np.uint8))[1].tobytes()
    with pytest.raises(NoFaceDetected) as err:
        engine.verify(good, blank)
    assert err.value.image == "b"


def test_converted_inputs_still_verify(engine, matched_pair_bytes) -> None:  # type: ignore[no-untyped-def]
    """Grayscale, RGBA, 16-bit PNG and an EXIF-rotated JPEG of the same photo all still match the other photo."""
    a, b = matched_pair_bytes
    bgr = cv2.imdecode(np.frombuffer(a, np.uint8), cv2.IMREAD_COLOR)
    variants = {
        "gray": cv2.imencode(".png", cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))[1].tobytes(),
        "rgba": cv2.imencode(".png", cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA))[1].tobytes(),
        "16bit": cv2.imencode(".png", bgr.astype(np.uint16) * 257)[1].tobytes(),
    }
    variants["exif_rotated"] = exif_orientation_jpeg(cv2.rotate(bgr, cv2.ROTATE_90_COUNTERCLOCKWISE), 6)
    for name, data in variants.items():
        r = engine.verify(data, b)
        assert r.match, f"{name}: score {r.score:.3f}"
        if name == "exif_rotated":
            assert r.to_dict()["faces"][0]["image_size"] == [250, 250]


def test_cli_verify_json(lfw_images, devtest_pairs) -> None:  # type: ignore[no-untyped-def]
    p = next(p for p in devtest_pairs if p.genuine)
    out = subprocess.run([sys.executable, "-m", "edgefx.cli", "verify", str(lfw_images / p.path_a),
                          str(lfw_images / p.path_b), "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["match"] is True
    bad = subprocess.run([sys.executable, "-m", "edgefx.cli", "verify", "/nonexistent.jpg",
                          str(lfw_images / p.path_b)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "cannot read" in bad.stderr


def test_explaining_never_changes_the_verification(engine, matched_pair_bytes) -> None:  # type: ignore[no-untyped-def]
    plain = engine.verify(*matched_pair_bytes)
    explained = engine.verify(*matched_pair_bytes, explain=True, methods=["single_removal", "single_aggregation"])
    assert explained.match == plain.match and explained.score == pytest.approx(plain.score, abs=1e-7)
    d = explained.to_dict()["explanation"]
    assert {"methods", "table", "agreement", "heatmaps"} <= set(d)
    rows = [r for r in d["table"] if r["method"] == "single_removal" and r["image"] == "a"]
    assert sum(r["share"] for r in rows) == pytest.approx(100.0, abs=0.1)
    png = explained.explanation.heatmap_png("a", "single_removal")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_parallel_preparation_matches_serial(engine, matched_pair_bytes, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Photo B is prepared on a second thread; the result must be the one-after-the-other result, and when both
    photos are bad the error is about photo A, as it would be serially."""
    if (os.cpu_count() or 1) < 2:
        pytest.skip("one CPU core: the engine prepares the photos one after the other, nothing parallel to compare")
    assert engine._prepare_pool is not None, "the engine should prepare the two photos in parallel on >1 core"
    parallel = engine.verify(*matched_pair_bytes)
    monkeypatch.setattr(engine, "_prepare_pool", None)
    serial = engine.verify(*matched_pair_bytes)
    assert parallel.score == pytest.approx(serial.score, abs=1e-6) and parallel.match == serial.match
    for p, s in zip(parallel.faces, serial.faces):
        np.testing.assert_allclose(p.face.landmarks, s.face.landmarks, atol=1e-4)
    monkeypatch.undo()
    blank = cv2.imencode(".jpg", np.full((250, 250, 3), 128, np.uint8))[1].tobytes()
    for _ in range(3):
        with pytest.raises(NoFaceDetected) as err:
            engine.verify(blank, b"")
        assert err.value.image == "a"
