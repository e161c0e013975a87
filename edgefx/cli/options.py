"""Shared command-line plumbing: engine flags, Settings from flags, typed file reads and writes, a parser that never
prints a traceback."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, NoReturn

from edgefx.runtime.config import Settings
from edgefx.runtime.errors import BadArgument, CannotRead, CannotWrite


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument as `error [bad_argument]: ...` (exit 2) like every other CLI error."""

    def error(self, message: str) -> NoReturn:
        raise BadArgument(f"{self.prog}: {message}")


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """Flags that choose how models run; each overrides its EDGEFX_* variable."""
    g = p.add_argument_group("models")
    g.add_argument("--backend", choices=["auto", "onnxruntime", "openvino"], help="inference backend (default auto)")
    g.add_argument("--device", choices=["CPU", "GPU", "NPU", "AUTO"], help="OpenVINO device (default CPU)")
    g.add_argument("--precision", choices=["fp32", "int8"], help="face-model precision (default fp32)")
    g.add_argument("--detector", choices=["mtcnn", "yunet"], help="face detector (default mtcnn)")
    g.add_argument("--recognizer", choices=["sface", "arcface", "fusion"],
                   help="face recognizer (default sface); fusion = weighted mean of the SFace and ArcFace cosines "
                        "(EDGEFX_FUSION_WEIGHT, default 0.6 on SFace)")
    g.add_argument("--threads", type=positive_int, help="inference threads (default: all cores)")
    g.add_argument("--models-dir", type=Path, help="folder with manifest.json (default ./models)")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def settings_from(args: argparse.Namespace, **extra: Any) -> Settings:
    """Settings from the environment, overridden by the engine flags present on `args`."""
    return Settings.from_env(backend=getattr(args, "backend", None), device=getattr(args, "device", None),
                             precision=getattr(args, "precision", None), threads=getattr(args, "threads", None),
                             detector=getattr(args, "detector", None), recognizer=getattr(args, "recognizer", None),
                             models_dir=getattr(args, "models_dir", None), **extra)


def read_bytes(path: str | Path) -> bytes:
    """A whole input file, or CannotRead saying why (missing, a folder, not permitted)."""
    try:
        return Path(path).read_bytes()
    except IsADirectoryError:
        raise CannotRead(f"cannot read {path}: it is a folder, not a file") from None
    except OSError as exc:
        raise CannotRead(f"cannot read {path}: {exc.strerror or exc}") from None


def writable_folder(path: str | Path) -> Path:
    """Creates `path` if needed and checks it can be written; CannotWrite otherwise."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".edgefx-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise CannotWrite(f"cannot write to folder {folder}: {exc.strerror or exc}") from None
    return folder


def write_text(path: str | Path, text: str) -> None:
    """Writes an output file, or CannotWrite saying why."""
    try:
        Path(path).write_text(text)
    except OSError as exc:
        raise CannotWrite(f"cannot write {path}: {exc.strerror or exc}") from None


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def existing_file(text: str) -> Path:
    """argparse type: a file that exists (not a folder)."""
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} is {'a folder' if path.is_dir() else 'missing'}, not a file")
    return path


def existing_dir(text: str) -> Path:
    """argparse type: a folder that exists."""
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is {'a file' if path.exists() else 'missing'}, not a folder")
    return path


def count_list(text: str) -> tuple[int, ...]:
    """argparse type: comma-separated whole numbers >= 1, e.g. '1,4,16'."""
    return tuple(positive_int(part) for part in text.split(",") if part.strip())


def add_gallery_options(p: argparse.ArgumentParser) -> None:
    """Where the gallery is: each overrides its EDGEFX_* variable."""
    g = p.add_argument_group("gallery")
    g.add_argument("--db", type=Path, help="gallery database (default EDGEFX_DB, else ~/.local/share/edgefx/gallery.db)")
    g.add_argument("--key-file", type=Path, help="template key (default EDGEFX_KEY_FILE, else gallery.key beside the "
                                                 "database, created 0600 on first enrolment)")


def gallery_settings(args: argparse.Namespace) -> Settings:
    """Settings from the engine and gallery flags."""
    return settings_from(args, db=getattr(args, "db", None), key_file=getattr(args, "key_file", None))
