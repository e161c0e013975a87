"""Write models/manifest.json: merge-update one entry per `<name>/<precision>` artifact, under a file lock.

Layout of the file:
    {"format": 1,
     "<name>/<precision>": {"files": {"onnx": {"path", "sha256"},
                                      "openvino": {"xml": {"path", "sha256"}, "bin": {"path", "sha256"}}},
                            "source": {...}, "license": ..., "inputs": [...], "outputs": [...],
                            "precision": ..., "parity": {...}, "built_with": {...}},
     ...,
     "calibration": {"<name>-<precision>": {...}}}
Model entries sit at the top level (every dict value with a "files" key); paths are relative to models/.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from export.sources import sha256_file

MODELS_DIR = Path(os.environ.get("EDGEFX_MODELS", Path(__file__).resolve().parent.parent / "models"))
FORMAT = 1


def manifest_path() -> Path:
    return MODELS_DIR / "manifest.json"


def _empty() -> dict[str, Any]:
    return {"format": FORMAT, "calibration": {}}


def read_manifest() -> dict[str, Any]:
    path = manifest_path()
    if not path.is_file():
        return _empty()
    data = json.loads(path.read_text())
    data.setdefault("format", FORMAT)
    data.setdefault("calibration", {})
    return data


@contextmanager
def _locked() -> Iterator[dict[str, Any]]:
    """Read-modify-write the manifest while holding an exclusive lock, so concurrent builders do not lose entries."""
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    with open(MODELS_DIR / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = read_manifest()
        yield data
        tmp = manifest_path().with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, manifest_path())


def update_manifest(key: str, entry: dict[str, Any]) -> None:
    """Set the entry of `key` (`<name>/<precision>`), keeping every other entry."""
    if "/" not in key:
        raise ValueError(f"manifest model keys are <name>/<precision>, got {key!r}")
    with _locked() as data:
        data[key] = entry


def model_entries() -> dict[str, dict[str, Any]]:
    """Every `<name>/<precision>` entry of the manifest."""
    return {k: v for k, v in read_manifest().items() if isinstance(v, dict) and "files" in v}


def update_calibration(key: str, entry: dict[str, Any]) -> None:
    """Set calibration[key] = entry (key is `<model>-<precision>`), keeping every other entry."""
    with _locked() as data:
        data["calibration"][key] = entry


def file_record(path: Path) -> dict[str, str]:
    """{path relative to models/, sha256} of one artifact."""
    return {"path": path.resolve().relative_to(MODELS_DIR.resolve()).as_posix(), "sha256": sha256_file(path)}


def record_matches(record: dict[str, str] | None) -> bool:
    """True when the artifact named by a manifest file record exists with the recorded sha256."""
    if not record:
        return False
    path = MODELS_DIR / record["path"]
    return path.is_file() and sha256_file(path) == record["sha256"]


def entry_files(entry: dict[str, Any]) -> list[dict[str, str]]:
    """Every file record of one manifest entry (onnx, openvino xml and bin)."""
    files = entry.get("files", {})
    records = [files["onnx"]] if "onnx" in files else []
    records += list(files.get("openvino", {}).values())
    records += [files["weights"]] if "weights" in files else []
    return records


def built_with() -> dict[str, str]:
    """Versions of the build tools that are importable here (torch only when installed)."""
    import importlib.metadata as md
    versions = {}
    for dist in ("torch", "onnx", "onnxruntime", "openvino"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            pass
    return versions
