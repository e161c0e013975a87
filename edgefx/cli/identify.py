"""`edgefx identify` (1:N: who is this, if anyone enrolled) and `edgefx verify-id` (1:1 against a claimed subject)."""

from __future__ import annotations

import argparse
from typing import Any

from edgefx.cli.options import (add_engine_options, add_gallery_options, gallery_settings, positive_int, print_json,
                                read_bytes, writable_folder)
from edgefx.engine import Engine
from edgefx.gallery.store import check_subject_id
from edgefx.qa.context import build_context


def write_explanation(result: Any, out: Any) -> None:
    if out is not None and result.explanation is not None:
        result.explanation.write_pngs(out)
        print(f"heatmaps written to {out}")


def cmd_identify(args: argparse.Namespace) -> int:
    out = writable_folder(args.out) if args.explain else None  # before the models load: fail fast, fail typed
    image = read_bytes(args.image)
    engine = Engine(gallery_settings(args), load_qa=False)
    result = engine.identify(image, top=args.top, explain=args.explain)
    data = result.to_dict()
    if args.json:
        print_json(data)
    else:
        best = data["candidates"][0] if data["candidates"] else None
        head = f"MATCH {data['subject']}" if data["match"] else "NO MATCH" + (f" (best {best['id']})" if best else "")
        score = "-" if data["score"] is None else f"{data['score']:.4f}"
        print(f"{head}  score {score}  threshold {data['threshold']:.4f}  confidence {data['confidence']:.4f}  "
              f"({data['timings_ms']['total']:.1f} ms, {data['gallery']['subjects']} subjects)")
        for rank, c in enumerate(data["candidates"], 1):
            print(f"  {rank}. {c['id']:<24} {c['score']:.4f}  {c['name'] or ''}")
        if data.get("explanation_unavailable"):
            print(f"no explanation: {data['explanation_unavailable']}")
    if not args.json:
        write_explanation(result, out)
    return 0


def cmd_verify_id(args: argparse.Namespace) -> int:
    check_subject_id(args.subject)
    out = writable_folder(args.out) if args.explain else None
    image = read_bytes(args.image)
    engine = Engine(gallery_settings(args), load_qa=False)
    result = engine.verify_id(args.subject, image, explain=args.explain)
    data = result.to_dict()
    if args.json:
        print_json(data)
    else:
        print(f"{'MATCH' if data['match'] else 'NO MATCH'} {data['subject']}  score {data['score']:.4f}  threshold "
              f"{data['threshold']:.4f}  confidence {data['confidence']:.4f}  ({data['timings_ms']['total']:.1f} ms, "
              f"{data['templates_compared']} template(s))")
        if data.get("explanation_unavailable"):
            print(f"no explanation: {data['explanation_unavailable']}")
        elif args.explain:
            print("\n".join(build_context(data)))
        write_explanation(result, out)
    return 0


def add_explain_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--explain", action="store_true",
                   help="saliency maps against the best-matching enrolled photo (when it was kept with --keep-crop)")
    p.add_argument("--out", default="edgefx-out", help="folder for heatmap PNGs (with --explain)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_gallery_options(p)
    add_engine_options(p)


def register(sub: Any) -> None:
    p = sub.add_parser("identify", help="1:N: who of the enrolled subjects is in this photo, if anyone")
    p.add_argument("image", metavar="IMG")
    p.add_argument("--top", type=positive_int, default=5, help="candidates to list (default 5)")
    add_explain_options(p)
    p.set_defaults(func=cmd_identify)

    p = sub.add_parser("verify-id", help="1:1: is this the enrolled subject ID (badge + face)?")
    p.add_argument("subject", metavar="ID")
    p.add_argument("image", metavar="IMG")
    add_explain_options(p)
    p.set_defaults(func=cmd_verify_id)
