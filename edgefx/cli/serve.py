"""`edgefx serve`, `edgefx models` and `edgefx selfcheck`: run the service; check what it would load."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from edgefx.cli.options import add_engine_options, positive_int, print_json, settings_from
from edgefx.engine import Engine
from edgefx.runtime.manifest import Manifest
from edgefx.service.process import serve


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from(args, host=args.host, port=args.port, token_file=args.token_file, workers=args.workers,
                             queue_size=args.queue_size)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    serve(settings)  # an unsafe bind is an UnsafeBind error: `error [unsafe_bind]`, exit 2, nothing loaded
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    rows = Manifest(settings.models_dir).check_all()
    bad = [r for r in rows if r["status"] != "ok"]
    if args.json:
        print_json({"models_dir": str(settings.models_dir), "artifacts": rows, "all_ok": not bad})
    else:
        for r in rows:
            print(f"{r['status']:8} {r['model']:14} {r['format']:9} {r['path']:32} {r['sha256'][:12]}")
    return 1 if bad else 0


def cmd_selfcheck(args: argparse.Namespace) -> int:
    """Loads every model (hash-checked, warmed up) and prints what was loaded: the `make run` self-check."""
    print_json(Engine(settings_from(args)).info())
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="serve the HTTP API and the kiosk page",
                       description="Serve /v1 and the kiosk page. Binds 127.0.0.1 unless told otherwise; any other "
                                   "address needs a token (EDGEFX_TOKEN or --token-file).")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1, EDGEFX_HOST)")
    p.add_argument("--port", type=positive_int, default=None, help="TCP port (default 8080, EDGEFX_PORT)")
    p.add_argument("--token-file", type=Path, default=None, help="file whose first line is the API token")
    p.add_argument("--workers", type=positive_int, default=None, help="inference threads (EDGEFX_WORKERS)")
    p.add_argument("--queue-size", type=positive_int, default=None,
                   help="requests allowed to wait (EDGEFX_QUEUE_SIZE)")
    add_engine_options(p)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("models", help="list model artifacts with their hash status and parity figures")
    p.add_argument("--json", action="store_true")
    p.add_argument("--models-dir", type=Path)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("selfcheck", help="load every model once and print what was loaded")
    add_engine_options(p)
    p.set_defaults(func=cmd_selfcheck)
