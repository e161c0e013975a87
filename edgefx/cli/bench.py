"""`edgefx bench backends|verify|explain|qa|serve`: medians and ratios measured in one run (with the machine's load)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Callable

from edgefx.cli.evaluate import add_saliency_options, engine_for, print_report
from edgefx.cli.options import count_list, existing_dir, positive_int, write_text
from edgefx.evaluation.bench import bench_backends, bench_verify
from edgefx.evaluation.identify_bench import bench_identify
from edgefx.evaluation.machine import machine
from edgefx.evaluation.qa_eval import bench
from edgefx.evaluation.saliency_eval import bench_explain_pairs, lfw_crops
from edgefx.evaluation.serve_bench import bench_serve
from edgefx.runtime.config import default_lfw_dir
from edgefx.runtime.errors import InvalidRequest


def reporting(fn: Callable[[argparse.Namespace], dict[str, Any]]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        load_before = os.getloadavg()[0]  # other work on the machine shows in every figure: say how much there was
        report = fn(args)
        report["load_average_1min"] = {"start": round(load_before, 2), "end": round(os.getloadavg()[0], 2)}
        report["machine"] = machine()  # figures differ between CPUs (AVX2 vs AVX-512/AMX): every report names its own
        text = json.dumps(report, indent=2)
        if getattr(args, "out", None):
            write_text(args.out, text)
        print(text if args.json else rows_table(report))
        return 0

    return handler


def rows_table(report: dict[str, Any]) -> str:
    lines = []
    for row in report["results"]:
        lines.append(json.dumps(row))
    return "\n".join(lines)


def flat_table(report: dict[str, Any]) -> str:
    lines = [f"{k:36} {v}" for k, v in report.items() if not isinstance(v, dict)]
    lines += [f"{k:36} {json.dumps(v)}" for k, v in report.items() if isinstance(v, dict)]
    return "\n".join(lines)


def cmd_bench_explain(args: argparse.Namespace) -> int:
    engine = engine_for(args)
    pairs = [c for c, _ in lfw_crops(engine, Path(args.root), Path(args.pairs), args.n)]
    if not pairs:
        raise InvalidRequest("no usable LFW pairs")
    report = bench_explain_pairs(pairs, engine.recognizer.embed, engine.calibration.threshold,
                                 reference=not args.no_reference, grid=args.grid, greedy_steps=args.steps)
    report["model"] = engine.model_info()
    print(json.dumps(report, indent=2) if args.json else flat_table(report))
    return 0


def cmd_bench_qa(args: argparse.Namespace) -> int:
    print_report(bench(args.precision, args.backend, args.threads, args.repeats, args.models_dir), args.json)
    return 0


def cmd_bench_serve(args: argparse.Namespace) -> int:
    figures = bench_serve(
        lfw=args.lfw or default_lfw_dir(),
        requests=args.requests,
        duration_s=args.duration,
        explain_duration_s=args.explain_duration,
        client_counts=args.clients,
        pair_count=args.pairs,
        workers=args.workers,
        queue_size=args.queue_size,
        threads=args.threads,
        explain_and_ask=args.explain_and_ask,
    )
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(f"cold start {figures['cold_start_s']} s; RSS {figures['rss_mb']}")
        for p in figures["load"]:
            print(f"explain={p['explain']!s:5} clients={p['clients']:2d} {p['throughput_rps']:7.2f} req/s "
                  f"p50 {p['p50_ms']} ms p95 {p['p95_ms']} ms statuses {p['statuses']}")
    return 0


def register(sub: Any) -> None:
    """The `bench` group and its commands."""
    group = sub.add_parser("bench", help="benchmarks (medians, ratios)")
    sub = group.add_subparsers(dest="bench_command", required=True)
    for name, fn, help_ in (("backends", bench_backends, "SFace and MTCNN latency per backend/precision/threads"),
                            ("verify", bench_verify, "per-stage and end-to-end pair latency vs the OpenCV peer")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--json", action="store_true")
        p.add_argument("--out", help="also write the JSON report here")
        p.add_argument("--lfw", type=existing_dir, default=str(default_lfw_dir()))
        p.add_argument("--repeats", type=positive_int, default=30 if name == "backends" else 3)
        p.add_argument("--pairs", type=positive_int, default=10)
        p.add_argument("--threads", type=positive_int, default=2)
        p.add_argument("--models-dir", type=Path)
        p.set_defaults(func=reporting(fn))
    p = sub.add_parser("identify", help="1:N search time vs gallery size (synthetic templates); enrol and identify "
                                        "end to end beside verify")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", help="also write the JSON report here")
    p.add_argument("--sizes", type=count_list, default="100,1000,10000,100000", help="gallery sizes (templates)")
    p.add_argument("--dim", type=positive_int, default=128, help="template size (SFace 128, ArcFace 192)")
    p.add_argument("--top", type=positive_int, default=5)
    p.add_argument("--repeats", type=positive_int, default=10, help="end-to-end repeats (search: 10x as many)")
    p.add_argument("--e2e-size", type=positive_int, default=10000, help="synthetic subjects enrolled end to end")
    p.add_argument("--no-e2e", action="store_true", help="search figures only (no models, no LFW)")
    p.add_argument("--lfw", type=existing_dir, default=str(default_lfw_dir()))
    p.add_argument("--pairs", type=positive_int, default=5, help="LFW pairs: their photos enrol, probe and verify")
    p.add_argument("--precision", choices=["fp32", "int8"], help="recognizer precision (default EDGEFX_PRECISION)")
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--models-dir", type=Path)
    p.set_defaults(func=reporting(bench_identify))
    p = sub.add_parser("explain", help="explanation latency, forward passes, speed-up over the plain loop, "
                                       "lazy-greedy order agreement")
    add_saliency_options(p, 10)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-reference", action="store_true", help="skip the (slow) plain reference loop")
    p.set_defaults(func=cmd_bench_explain)
    p = sub.add_parser("qa", help="QA latency per question: fp32 vs int8, onnxruntime vs OpenVINO")
    p.add_argument("--json", action="store_true")
    p.add_argument("--precision", nargs="+", default=["fp32", "int8"], choices=["fp32", "int8"])
    p.add_argument("--backend", nargs="+", default=["onnxruntime", "openvino"], choices=["onnxruntime", "openvino"])
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--repeats", type=positive_int, default=1)
    p.add_argument("--models-dir", type=Path)
    p.set_defaults(func=cmd_bench_qa)
    p = sub.add_parser("serve", help="cold start, RSS and latency of the HTTP service on loopback")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--requests", type=positive_int, default=1000, help="verify requests before the second RSS reading")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per load phase without explain")
    p.add_argument("--explain-duration", type=float, default=20.0, help="seconds per load phase with explain")
    p.add_argument("--clients", type=count_list, default="1,4,16", help="comma-separated concurrent client counts")
    p.add_argument("--explain-and-ask", type=positive_int, default=3,
                   help="explanations, each asked every bench question, before the last RSS reading")
    p.add_argument("--pairs", type=positive_int, default=50, help="LFW DevTest pairs to cycle through")
    p.add_argument("--workers", type=positive_int, default=1, help="server inference workers")
    p.add_argument("--queue-size", type=positive_int, default=8, help="server queue size")
    p.add_argument("--threads", type=positive_int, default=2, help="inference threads per model in the server")
    p.add_argument("--lfw", type=existing_dir, default=None, help="LFW folder (default EDGEFX_LFW or ../shared/lfw)")
    p.set_defaults(func=cmd_bench_serve)
