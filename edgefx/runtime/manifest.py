"""The model manifest: where each built artifact lives and the sha256 it must have."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgefx.runtime.errors import ModelHashMismatch, ModelMissing

BUILD_HINT = "build it with `make models` (or `python -m export all`)"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    # Keyed by size and mtime so that a file changed on disk is hashed again.
    return sha256_file(Path(path))


@dataclass(frozen=True)
class Artifact:
    """One file of a model, with the hash the manifest promises."""

    key: str
    path: Path
    sha256: str

    def verified_path(self, check: bool = True) -> Path:
        """The path, after checking the file exists and (if `check`) that its sha256 matches."""
        if not self.path.is_file():
            raise ModelMissing(f"model artifact {self.key} is missing at {self.path}; {BUILD_HINT}")
        if check:
            st = self.path.stat()
            actual = _sha256_cached(str(self.path), st.st_size, st.st_mtime_ns)
            if actual != self.sha256:
                raise ModelHashMismatch(
                    f"model artifact {self.key} at {self.path} has sha256 {actual[:16]}..., "
                    f"the manifest says {self.sha256[:16]}...; the file was changed or is stale: "
                    f"rebuild with `python -m export all --force`"
                )
        return self.path


class Manifest:
    """`models/manifest.json`: entries keyed `<name>/<precision>`, and a `calibration` section."""

    def __init__(self, models_dir: Path) -> None:
        self.models_dir = Path(models_dir)
        path = self.models_dir / "manifest.json"
        if not path.is_file():
            raise ModelMissing(f"no model manifest at {path}; {BUILD_HINT}")
        self.data: dict[str, Any] = json.loads(path.read_text())

    def entries(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.data.items() if "/" in k and isinstance(v, dict) and "files" in v}

    def entry(self, name: str, precision: str) -> dict[str, Any]:
        key = f"{name}/{precision}"
        try:
            return self.entries()[key]
        except KeyError:
            raise ModelMissing(f"model {key} is not in {self.models_dir / 'manifest.json'}; {BUILD_HINT}") from None

    def artifact(self, name: str, precision: str, fmt: str) -> list[Artifact]:
        """The files of one format: `onnx` gives [model.onnx]; `openvino` gives [model.xml, model.bin]."""
        files = self.entry(name, precision)["files"]
        if fmt not in files:
            raise ModelMissing(f"model {name}/{precision} has no {fmt} artifact; {BUILD_HINT}")
        spec = files[fmt]
        parts = [spec] if "path" in spec else [spec[k] for k in ("xml", "bin")]
        return [Artifact(f"{name}/{precision}/{fmt}", self.models_dir / p["path"], p["sha256"]) for p in parts]

    def has(self, name: str, precision: str, fmt: str | None = None) -> bool:
        entry = self.entries().get(f"{name}/{precision}")
        return entry is not None and (fmt is None or fmt in entry["files"])

    def calibration(self) -> dict[str, Any]:
        return dict(self.data.get("calibration", {}))

    def check_all(self) -> list[dict[str, Any]]:
        """Every artifact with its status: ok, missing or mismatch (for `edgefx models`)."""
        rows = []
        for key, entry in sorted(self.entries().items()):
            name, precision = key.split("/", 1)
            for fmt in entry["files"]:
                for art in self.artifact(name, precision, fmt):
                    status = "ok"
                    try:
                        art.verified_path()
                    except ModelHashMismatch:
                        status = "mismatch"
                    except ModelMissing:
                        status = "missing"
                    rows.append({"model": key, "format": fmt, "path": str(art.path.relative_to(self.models_dir)),
                                 "sha256": art.sha256, "status": status, "parity": entry.get("parity", {})})
        return rows
