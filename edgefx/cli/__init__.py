"""The `edgefx` command line: verify, ask, enrol, identify, serve, detect, evaluate, benchmark, inspect models.

Every command lives in a module of this package with a `register(subparsers)` function; COMMANDS lists them in the
order `edgefx --help` shows them. Every error ends as `error [code]: message` on stderr with exit status 2."""

from __future__ import annotations

import logging
import sys
import traceback

from edgefx.cli import bench, detect, enroll, evaluate, identify, serve, subjects, verify
from edgefx.cli.options import Parser
from edgefx.runtime.errors import EdgefxError

COMMANDS = (verify, enroll, identify, subjects, serve, detect, evaluate, bench)


def build_parser() -> Parser:
    parser = Parser(prog="edgefx", description=__doc__.split("\n", 1)[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (and tracebacks of internal errors)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    verbose = "-v" in (argv if argv is not None else sys.argv[1:]) or "--verbose" in (argv or sys.argv[1:])
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(message)s")
        return int(args.func(args) or 0)
    except EdgefxError as exc:
        print(f"error [{exc.code}]: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a file or folder the command needed, named by the OS
        print(f"error [io_error]: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    except Exception as exc:  # a bug, not a user error: still one line (the traceback with -v)
        if verbose:
            traceback.print_exc()
        print(f"error [internal]: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
