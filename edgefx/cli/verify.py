"""`edgefx verify` and `edgefx ask`: compare two photos; answer questions about the result."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from edgefx.cli.options import add_engine_options, print_json, read_bytes, settings_from, writable_folder
from edgefx.engine import Engine
from edgefx.qa.context import build_context, build_facts
from edgefx.qa.facts import Fact
from edgefx.runtime.errors import EdgefxError


def cmd_verify(args: argparse.Namespace) -> int:
    out = writable_folder(args.out) if args.explain else None  # before the models load: fail fast, fail typed
    image_a, image_b = read_bytes(args.image_a), read_bytes(args.image_b)
    engine = Engine(settings_from(args), load_qa=False)
    result = engine.verify(image_a, image_b, explain=args.explain, methods=args.methods)
    if out is not None and result.explanation is not None:
        result.explanation.write_pngs(out)
    data = result.to_dict()
    if args.json:
        print_json(data)
    else:
        print(f"{'MATCH' if data['match'] else 'NO MATCH'}  score {data['score']:.4f}  threshold "
              f"{data['threshold']:.4f}  confidence {data['confidence']:.4f}  ({data['timings_ms']['total']:.1f} ms)")
        if args.explain:
            print("\n".join(build_context(data)))
    return 0


def _print_answers(answers: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(answers)
        return
    for a in answers:
        print(f"Q: {a['question']}\nA: {a['answer']}  ({a['confidence']:.2f})\n")


def _interactive(engine: Engine, facts: list[Fact]) -> None:
    for line in sys.stdin:
        q = line.strip()
        if not q:
            break
        try:
            ans = engine.ask(facts, q)
        except EdgefxError as exc:
            print(f"error [{exc.code}]: {exc.message}")
            continue
        print(f"{ans.answer}   [confidence {ans.confidence:.2f}]")


def cmd_ask(args: argparse.Namespace) -> int:
    image_a, image_b = read_bytes(args.image_a), read_bytes(args.image_b)
    engine = Engine(settings_from(args))
    result = engine.verify(image_a, image_b, explain=not args.no_explain)
    facts = build_facts(result.to_dict())
    if args.question:
        _print_answers([dict(question=q, **engine.ask(facts, q).to_dict()) for q in args.question], args.json)
        return 0
    print(f"{'MATCH' if result.match else 'NO MATCH'} (score {result.score:.3f}). Ask a question; empty line to quit.")
    _interactive(engine, facts)
    return 0


def register(sub: Any) -> None:
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
