"""`edgefx eval lfw-identify`: the open-set LFW protocol per recognizer x precision, and (with
`--write-calibration`) the tracked open-set calibration files the identify threshold is read from."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from edgefx.cli.options import add_engine_options, existing_dir, settings_from, write_text
from edgefx.evaluation.lfw_identify import evaluate_identify
from edgefx.faces.loading import RECOGNIZERS, load_detector, load_recognizer, recognizer_models
from edgefx.gallery.openset import identify_calibration_path
from edgefx.runtime.config import default_lfw_dir


def names(text: str, allowed: tuple[str, ...]) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    wrong = [c for c in chosen if c not in allowed]
    if wrong or not chosen:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(allowed)} (comma-separated)")
    return chosen


def cmd_eval_lfw_identify(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    recognizers = args.recognizers or [settings.recognizer]
    precisions = args.precisions or [settings.precision]
    loaded: dict[tuple[str, str], Any] = {}
    for precision in precisions:  # the embedders first: a fusion is built from its parts' embeddings
        for model in dict.fromkeys(m for r in recognizers for m in recognizer_models(r)):
            loaded[(model, precision)] = load_recognizer(dataclasses.replace(settings, recognizer=model,
                                                                             precision=precision))
        if "fusion" in recognizers:
            loaded[("fusion", precision)] = None
    reports, calibrations = evaluate_identify(Path(args.root), load_detector(settings), loaded, settings.detector,
                                              cache=args.crops_cache,
                                              fusion_weight=float(getattr(settings, "fusion_weight", 0.5)))
    if args.write_calibration:
        for calibration in calibrations:
            if calibration.recognizer not in recognizers:
                continue
            path = identify_calibration_path(settings.models_dir, calibration.recognizer, calibration.precision,
                                             calibration.detector)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, json.dumps(calibration.to_dict(), indent=1) + "\n")
            print(f"wrote {path}")
    text = json.dumps([r for r in reports if r["recognizer"] in recognizers], indent=2)
    if args.json:
        write_text(args.json, text)
    print(text)
    return 0


def register(sub: Any) -> None:
    """`lfw-identify` in the `eval` group."""
    p = sub.add_parser("lfw-identify", help="open-set identification on LFW: rank-1, FNIR at FPIR 1e-2 and 1e-3")
    p.add_argument("--root", type=existing_dir, default=str(default_lfw_dir()), help="LFW folder (with lfw-deepfunneled/)")
    p.add_argument("--json", help="also write the report to this file")
    p.add_argument("--recognizers", type=lambda t: names(t, RECOGNIZERS),
                   help="comma-separated recognizers (default --recognizer); one alignment pass serves them all")
    p.add_argument("--precisions", type=lambda t: names(t, ("fp32", "int8")), help="comma-separated precisions")
    p.add_argument("--write-calibration", action="store_true",
                   help="write models/calibration/identify/<recognizer>-<precision>[-<detector>].json")
    p.add_argument("--crops-cache", type=Path, help="an .npz to keep the aligned crops in between runs (face "
                                                    "crops: keep it outside the repository)")
    add_engine_options(p)
    p.set_defaults(func=cmd_eval_lfw_identify)
