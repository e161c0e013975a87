"""The `edgefx` command line: verify, explain, ask, serve, evaluate, benchmark, inspect models."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Callable

from edgefx.config import Settings
from edgefx.errors import EdgefxError

# Modules that contribute subcommands under `eval` / `bench` through `add_eval_parser` / `add_bench_parser`.
EVAL_MODULES = ("edgefx.evaluate", "edgefx.explain_eval", "edgefx.qa_eval")
BENCH_MODULES = ("edgefx.bench", "edgefx.explain_eval", "edgefx.qa_eval", "edgefx.serve_bench")


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """Flags that choose how models run; each overrides its EDGEFX_* variable."""
    g = p.add_argument_group("models")
    g.add_argument("--backend", choices=["auto", "onnxruntime", "openvino"], help="inference backend (default auto)")
    g.add_argument("--device", choices=["CPU", "GPU", "NPU", "AUTO"], help="OpenVINO device (default CPU)")
    g.add_argument("--precision", choices=["fp32", "int8"], help="face-model precision (default fp32)")
    g.add_argument("--detector", choices=["mtcnn", "yunet"], help="face detector (default mtcnn)")
    g.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    g.add_argument("--models-dir", type=Path, help="folder with manifest.json (default ./models)")


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    return Settings.from_env(backend=getattr(args, "backend", None), device=getattr(args, "device", None),
                             precision=getattr(args, "precision", None), threads=getattr(args, "threads", None),
                             detector=getattr(args, "detector", None),
                             models_dir=getattr(args, "models_dir", None), **extra)


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise EdgefxError(f"cannot read {path}: {exc.strerror}") from None


def cmd_verify(args: argparse.Namespace) -> int:
    from edgefx.engine import Engine

    engine = Engine(settings_from(args), load_qa=False)
    result = engine.verify(_read(args.image_a), _read(args.image_b), explain=args.explain, methods=args.methods)
    if args.explain and result.explanation is not None:
        result.explanation.write_pngs(Path(args.out))
    data = result.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(f"{'MATCH' if data['match'] else 'NO MATCH'}  score {data['score']:.4f}  threshold "
              f"{data['threshold']:.4f}  confidence {data['confidence']:.4f}  ({data['timings_ms']['total']:.1f} ms)")
        if args.explain:
            from edgefx.context import build_context

            print("\n".join(build_context(data)))
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from edgefx.context import build_context
    from edgefx.engine import Engine

    engine = Engine(settings_from(args))
    result = engine.verify(_read(args.image_a), _read(args.image_b), explain=not args.no_explain)
    context = build_context(result.to_dict())
    questions = args.question or []
    if questions:
        answers = [dict(question=q, **engine.ask(context, q).to_dict()) for q in questions]
        if args.json:
            print(json.dumps(answers, indent=2))
        else:
            for a in answers:
                print(f"Q: {a['question']}\nA: {a['answer']}  ({a['confidence']:.2f})\n")
        return 0
    print(f"{'MATCH' if result.match else 'NO MATCH'} (score {result.score:.3f}). Ask a question; empty line to quit.")
    for line in sys.stdin:
        q = line.strip()
        if not q:
            break
        try:
            ans = engine.ask(context, q)
        except EdgefxError as exc:
            print(f"error: {exc.message}")
            continue
        print(f"{ans.answer}   [confidence {ans.confidence:.2f}; from: {ans.evidence}]")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from edgefx.server import serve

    serve(settings_from(args, host=args.host, port=args.port))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from edgefx.manifest import Manifest

    settings = settings_from(args)
    rows = Manifest(settings.models_dir).check_all()
    bad = [r for r in rows if r["status"] != "ok"]
    if args.json:
        print(json.dumps({"models_dir": str(settings.models_dir), "artifacts": rows, "all_ok": not bad}, indent=2))
    else:
        for r in rows:
            print(f"{r['status']:8} {r['model']:14} {r['format']:9} {r['path']:32} {r['sha256'][:12]}")
    return 1 if bad else 0


def cmd_selfcheck(args: argparse.Namespace) -> int:
    """Loads every model (hash-checked, warmed up) and prints what was loaded: the `make run` self-check."""
    from edgefx.engine import Engine

    engine = Engine(settings_from(args))
    print(json.dumps(engine.info(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgefx", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verify", help="compare two face photos")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--explain", action="store_true", help="compute saliency maps and the explainability table")
    p.add_argument("--methods", nargs="+", help="saliency methods (default: all five)")
    p.add_argument("--out", default="edgefx-out", help="folder for heatmap PNGs (with --explain)")
    add_engine_options(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("ask", help="verify two photos, then answer questions about the result")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--question", "-q", action="append", help="a question (repeatable); none = interactive")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-explain", action="store_true", help="skip the saliency maps (faster, fewer facts)")
    add_engine_options(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("serve", help="run the local HTTP API and the explanation screen")
    p.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 8080)")
    add_engine_options(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("models", help="list model artifacts with their hash status and parity figures")
    p.add_argument("--json", action="store_true")
    p.add_argument("--models-dir", type=Path)
    p.set_defaults(func=cmd_models)

    from edgefx.detect import add_parser as add_detect_parser

    add_detect_parser(sub)

    p = sub.add_parser("selfcheck", help="load every model once and print what was loaded")
    add_engine_options(p)
    p.set_defaults(func=cmd_selfcheck)

    for group, modules, hook in (("eval", EVAL_MODULES, "add_eval_parser"), ("bench", BENCH_MODULES, "add_bench_parser")):
        gp = sub.add_parser(group, help="evaluations" if group == "eval" else "benchmarks (medians, ratios)")
        gsub = gp.add_subparsers(dest=f"{group}_command", required=True)
        for name in modules:
            adder: Callable[[Any], None] | None = getattr(_optional_module(name), hook, None)
            if adder is not None:
                adder(gsub)
    return parser


def _optional_module(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return int(args.func(args) or 0)
    except EdgefxError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
