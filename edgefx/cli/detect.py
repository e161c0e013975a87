"""`edgefx detect`: the faces found in photos (MTCNN or YuNet), and optionally the detector's latency per net."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from typing import Any

import numpy as np

from edgefx.cli.options import add_engine_options, positive_int, read_bytes, settings_from
from edgefx.faces.detection import Net, select_face
from edgefx.faces.loading import load_detector
from edgefx.runtime.image import decode_image


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{value} must be above 0")
    return value


def register(subparsers: Any) -> None:
    """`edgefx detect PHOTO... [--json] [--repeat N]`: the faces found, and optionally detect() latency."""
    p = subparsers.add_parser("detect", help="find the faces in photos (MTCNN or YuNet); optionally time the detector")
    p.add_argument("images", nargs="+", help="photo files")
    p.add_argument("--min-face-size", type=positive_float, help="smallest face searched, in pixels (default: settings)")
    p.add_argument("--repeat", type=positive_int, default=0, help="run detect() this many times per photo and report ms")
    p.add_argument("--json", action="store_true", help="print JSON")
    add_engine_options(p)
    p.set_defaults(func=run_detect_command)


class TimedNet:
    """A net that adds up its inference time and input rows (for `edgefx detect --repeat`)."""

    def __init__(self, net: Net) -> None:
        self.net = net
        self.name = getattr(net, "name", "net")
        self.input_names, self.output_names = net.input_names, net.output_names
        self.backend = getattr(net, "backend", "?")
        self.reset()

    def reset(self) -> None:
        self.seconds, self.rows = 0.0, 0

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        t0 = time.perf_counter()
        out = self.net.run(feeds)
        self.seconds += time.perf_counter() - t0
        self.rows += len(next(iter(feeds.values())))
        return out


def run_detect_command(args: argparse.Namespace) -> int:
    s = settings_from(args, min_face_size=args.min_face_size)
    nets: list[TimedNet] = []

    def timed(net: Net) -> TimedNet:
        nets.append(TimedNet(net))
        return nets[-1]

    # Here --precision is the detector's: this command has no recognizer.
    detector = load_detector(dataclasses.replace(s, detector_precision=s.precision), threads=s.threads, wrap=timed)
    results = []
    for path in args.images:
        rgb = decode_image(read_bytes(path), s.max_pixels)
        faces = detector.detect(rgb)
        row: dict[str, object] = {"image": path, "size": [rgb.shape[1], rgb.shape[0]],
                                  "faces": [f.to_dict() for f in faces]}
        if faces:
            chosen, _ = select_face(faces, rgb.shape)
            row["selected"] = faces.index(chosen)
        if args.repeat > 0:
            times = []
            for net in nets:
                net.reset()
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                detector.detect(rgb)
                times.append((time.perf_counter() - t0) * 1e3)
            row["detect_ms"] = {"median": round(float(np.median(times)), 2),
                                "p95": round(float(np.percentile(times, 95)), 2), "runs": args.repeat}
            # Where a detection's time goes: each net's mean inference time and rows per detection; the rest of
            # detect_ms is pyramid, crops, NMS and Python.
            row["nets"] = {net.name: {"ms": round(net.seconds * 1e3 / args.repeat, 2),
                                      "rows": round(net.rows / args.repeat, 1)} for net in nets}
        results.append(row)
    out = {"detector": s.detector, "backend": getattr(nets[0], "backend", s.backend), "min_face_size": s.min_face_size,
           "threads": s.threads, "results": results}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        for row in results:
            faces = row["faces"]
            print(f"{row['image']}: {len(faces)} face(s)"  # type: ignore[arg-type]
                  + (f", detect median {row['detect_ms']['median']} ms" if "detect_ms" in row else ""))  # type: ignore[index]
            for i, f in enumerate(faces):  # type: ignore[arg-type]
                mark = "*" if row.get("selected") == i else " "
                print(f"  {mark} score {f['score']:.4f} box {f['box']} size {f['size_px']} px")
    return 0
