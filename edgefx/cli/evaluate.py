"""`edgefx eval lfw|saliency|qa`: accuracy, faithfulness and QA figures (the evaluation package behind a CLI)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from edgefx.cli import identify_eval
from edgefx.cli.options import add_engine_options, existing_dir, existing_file, positive_int, settings_from, write_text
from edgefx.engine import Engine
from edgefx.evaluation.lfw_eval import evaluate_lfw, plot_curves
from edgefx.evaluation.qa_eval import SETS, evaluate, set_paths
from edgefx.evaluation.region_eval import sheet_faces
from edgefx.evaluation.saliency_eval import faithfulness, lfw_faces, merge_reports
from edgefx.explain.regions import region_labels
from edgefx.explain.render import region_sheet, to_png_bytes
from edgefx.explain.saliency import DEFAULT_FILL, DEFAULT_STEPS
from edgefx.explain.windows import DEFAULT_GRID
from edgefx.faces.decision import load_calibration
from edgefx.faces.loading import load_face_models
from edgefx.qa.answerer import QuestionAnswerer
from edgefx.runtime.config import default_lfw_dir
from edgefx.runtime.errors import CannotWrite, InvalidRequest, ModelMissing


def cmd_eval_lfw(args: argparse.Namespace) -> int:
    settings = settings_from(args, flip_tta=True if args.flip else None)
    detector, recognizer, backend = load_face_models(settings)
    threshold = None
    try:
        threshold = load_calibration(settings.models_dir, recognizer.name, settings.precision,
                                     settings.detector).threshold
    except ModelMissing:
        pass  # no calibration yet: the report gives the DevTrain-free figures only
    report, curves = evaluate_lfw(Path(args.root), Path(args.pairs), detector, recognizer, threshold,
                                  impostors_all=args.impostors == "all")
    report.update(recognizer=recognizer.name, backend=backend, precision=settings.precision, flip_tta=settings.flip_tta,
                  min_face_size=settings.min_face_size)
    if args.plot:
        plot_curves(Path(args.plot), curves, f"DET, LFW {report['protocol']}, {recognizer.name} {settings.precision}")
        if not Path(args.plot).is_file():
            raise CannotWrite(f"cannot write the DET plot to {args.plot}")
    text = json.dumps(report, indent=2)
    if args.json:
        write_text(args.json, text)
    print(text)
    return 0


def engine_for(args: argparse.Namespace) -> Engine:
    """The Engine the saliency commands use (no QA models)."""
    return Engine(settings_from(args), load_qa=False)


def cmd_eval_saliency(args: argparse.Namespace) -> int:
    if args.merge:
        try:
            report = merge_reports([json.loads(Path(f).read_text()) for f in args.merge])
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidRequest(f"cannot merge {args.merge}: {exc}") from None
        if args.json:
            write_text(args.json, json.dumps(report, indent=1))
        print(json.dumps({"pixel_level": report["summary"], "region_level": report["regions"]}, indent=2))
        return 0
    if args.n < 2:
        raise InvalidRequest("--n must be at least 2 (one matched and one mismatched pair)")
    shard, shards = _shard(args.shard)
    engine = engine_for(args)
    faces = lfw_faces(engine, Path(args.root), Path(args.pairs), args.n)
    ids = list(range(len(faces)))[shard::shards]
    report = faithfulness([faces[i][:2] for i in ids], engine.recognizer.embed,  # type: ignore[misc]
                          engine.calibration.threshold, grid=args.grid, fill=args.fill, greedy_steps=args.steps,
                          random_orders=args.random_orders, landmarks=[faces[i][2] for i in ids],
                          region_draws=args.region_draws, pair_ids=ids, pixel_level=not args.no_pixel)
    report["model"] = engine.model_info()
    report["pairs_file"] = str(args.pairs)
    report["pairs"] = {"matched": sum(faces[i][1] for i in ids), "mismatched": sum(not faces[i][1] for i in ids)}
    if args.json:
        write_text(args.json, json.dumps(report, indent=1))
    print(json.dumps({"pixel_level": report["summary"], "region_level": report["regions"]}, indent=2))
    return 0


def _shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise InvalidRequest(f"--shard must look like K/N (e.g. 0/2), got {text!r}") from None
    if not 0 <= k < n:
        raise InvalidRequest(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def cmd_eval_regions(args: argparse.Namespace) -> int:
    engine = engine_for(args)
    faces = sheet_faces(engine, Path(args.root), Path(args.pairs), args.n)
    if not faces:
        raise InvalidRequest("no face was found in the scanned LFW photos")
    sheet = region_sheet([c for c, _, _ in faces], [region_labels(p) for _, p, _ in faces], [p for _, p, _ in faces],
                         [t for _, _, t in faces])
    out = Path(args.out)
    try:
        out.write_bytes(to_png_bytes(sheet))
    except OSError as exc:
        raise CannotWrite(f"cannot write the contact sheet to {out}: {exc.strerror}") from None
    print(f"{len(faces)} faces -> {out} (LFW faces: do not commit it)")
    return 0


def print_report(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report, indent=2))
        return
    for key, value in report.items():
        print(f"{key}: {json.dumps(value)}")


def cmd_eval_qa(args: argparse.Namespace) -> int:
    qa = QuestionAnswerer(precision=args.precision, backend=args.backend, threads=args.threads,
                          models_dir=args.models_dir)
    default_questions, default_results = set_paths(args.set)
    report = evaluate(qa, args.questions or default_questions, args.results or default_results, args.show_mistakes)
    print_report(report, args.json)
    return 0


def add_saliency_options(p: argparse.ArgumentParser, n: int) -> None:
    p.add_argument("--root", type=existing_dir, default=str(default_lfw_dir()), help="LFW folder (with lfw-deepfunneled/)")
    p.add_argument("--pairs", type=existing_file, default=str(default_lfw_dir() / "pairsDevTest.txt"), help="pairs file")
    p.add_argument("--n", type=positive_int, default=n, help="number of pairs (half matched, half mismatched)")
    p.add_argument("--grid", type=positive_int, default=DEFAULT_GRID, help="windows per side")
    p.add_argument("--steps", type=positive_int, default=DEFAULT_STEPS, help="greedy steps K")
    add_engine_options(p)


def register(sub: Any) -> None:
    """The `eval` group and its commands."""
    group = sub.add_parser("eval", help="evaluations")
    sub = group.add_subparsers(dest="eval_command", required=True)

    p = sub.add_parser("lfw", help="LFW verification accuracy, EER, AUC, FNMR@FMR, failures to acquire")
    p.add_argument("--root", type=existing_dir, default=str(default_lfw_dir()), help="LFW folder (with lfw-deepfunneled/)")
    p.add_argument("--pairs", type=existing_file, default=str(default_lfw_dir() / "pairsDevTest.txt"),
                   help="pairs file: View 2 pairs.txt or View 1 pairsDevTest.txt")
    p.add_argument("--json", help="also write the report to this file")
    p.add_argument("--plot", help="write a DET plot PNG here")
    p.add_argument("--impostors", choices=["pairs", "all"], default="pairs",
                   help="'all' also scores every distinct-identity image pair (resolves FMR 1e-4, 1e-5)")
    p.add_argument("--flip", action="store_true", help="flip test-time augmentation")
    add_engine_options(p)
    p.set_defaults(func=cmd_eval_lfw)
    identify_eval.register(sub)

    p = sub.add_parser("saliency", help="deletion/insertion AUC of each saliency method vs random window orders; "
                       "region-level test of each region ranking vs random regions")
    add_saliency_options(p, 40)
    p.add_argument("--fill", choices=["blur", "mean"], default=DEFAULT_FILL)
    p.add_argument("--random-orders", type=positive_int, default=3)
    p.add_argument("--region-draws", type=positive_int, default=5, help="seeded random regions per face and top-k")
    p.add_argument("--shard", default="0/1", help="K/N: only every N-th pair from the K-th (run shards side by side)")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="merge shard reports (same settings) into --json")
    p.add_argument("--no-pixel", action="store_true", help="the region-level test only (no deletion/insertion curves)")
    p.add_argument("--json", help="write the full report (with curves) to this file")
    p.set_defaults(func=cmd_eval_saliency)

    p = sub.add_parser("regions", help="contact sheet PNG of LFW aligned faces with the ten region outlines "
                       "(half of them the most turned heads)")
    add_saliency_options(p, 20)
    p.add_argument("--out", required=True, help="PNG path (outside the repository: it shows LFW faces)")
    p.set_defaults(func=cmd_eval_regions)

    p = sub.add_parser("qa", help="QA on a question set: answered right, refused, confident wrong")
    p.add_argument("--set", choices=sorted(SETS), default="dev",
                   help="dev, dev2: the tuning sets; unseen: held-out questions never used for tuning; fresh: a "
                        "second held-out set, written after the last design choice")
    p.add_argument("--json", action="store_true")
    p.add_argument("--precision", default="int8", choices=["fp32", "int8"])
    p.add_argument("--backend", default="onnxruntime", choices=["auto", "onnxruntime", "openvino"])
    p.add_argument("--threads", type=positive_int, default=2)
    p.add_argument("--questions", type=existing_file, help="another question file (jsonl) instead of the set's")
    p.add_argument("--results", type=existing_file, help="the stored results its contexts refer to")
    p.add_argument("--models-dir", type=Path)
    p.add_argument("--show-mistakes", action="store_true", help="list every wrong answer or wrong refusal")
    p.set_defaults(func=cmd_eval_qa)
