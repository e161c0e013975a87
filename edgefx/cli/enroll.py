"""`edgefx enroll`: store a subject's encrypted templates (one per photo) in the gallery."""

from __future__ import annotations

import argparse
from typing import Any

from edgefx.cli.options import add_engine_options, add_gallery_options, gallery_settings, print_json, read_bytes
from edgefx.engine import Engine
from edgefx.gallery.access import Gallery


def cmd_enroll(args: argparse.Namespace) -> int:
    Gallery.check_enrolment(args.id, args.name, len(args.images))  # a bad id fails before the models load
    images = [read_bytes(path) for path in args.images]
    engine = Engine(gallery_settings(args), load_qa=False)
    data = engine.enroll(args.id, images, name=args.name, keep_crop=args.keep_crop).to_dict()
    if args.json:
        print_json(data)
    else:
        kept = ", aligned photos kept" if data["kept_crops"] else ""
        print(f"enrolled {data['subject']}{f' ({args.name})' if args.name else ''}: {len(data['templates'])} "
              f"template(s){kept}  ({data['timings_ms']['total']:.0f} ms)")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("enroll", help="enrol a subject: one encrypted template per photo")
    p.add_argument("--id", required=True, help="subject id: 1-64 letters, digits or ._@-")
    p.add_argument("--name", help="display name")
    p.add_argument("--keep-crop", action="store_true",
                   help="also keep the aligned 112x112 photo (encrypted), to explain later decisions against it")
    p.add_argument("images", nargs="+", metavar="IMG", help="photos of the subject (one face each)")
    p.add_argument("--json", action="store_true")
    add_gallery_options(p)
    add_engine_options(p)
    p.set_defaults(func=cmd_enroll)
