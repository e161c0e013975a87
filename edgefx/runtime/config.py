"""Settings of the runtime, read from `EDGEFX_*` environment variables and overridable by CLI flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from edgefx.runtime.errors import BadArgument


def default_models_dir() -> Path:
    """`EDGEFX_MODELS`, else the `models/` folder of the source tree this package runs from."""
    env = os.environ.get("EDGEFX_MODELS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


def default_data_dir() -> Path:
    """Where the gallery lives by default: `$XDG_DATA_HOME/edgefx`, else `~/.local/share/edgefx`."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "edgefx"


def default_lfw_dir() -> Path:
    """`EDGEFX_LFW`, else `../shared/lfw` beside the source tree."""
    env = os.environ.get("EDGEFX_LFW")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared" / "lfw"


@dataclass
class Settings:
    models_dir: Path = field(default_factory=default_models_dir)
    backend: str = "auto"  # auto | onnxruntime | openvino
    device: str = "CPU"  # OpenVINO device: CPU | GPU | NPU | AUTO
    precision: str = "fp32"  # fp32 | int8: the recognizer and its calibration
    # sface (default) | arcface (MobileFaceNet, 192-d) | fusion (weighted mean of the two cosines); each its own calibration
    recognizer: str = "sface"
    # fusion: the weight of SFace's cosine (ArcFace's is 1 - w). 0.6 was fitted on LFW DevTrain only (lowest EER; the
    # plain mean 0.5 was 1 pair behind there) and held on 6,000 further pairs (FNMR at FMR 1e-5 2.7 % vs 3.2 %).
    fusion_weight: float = 0.6
    # mtcnn (the paper's, default) | yunet (OpenCV zoo's: ~4x cheaper per photo, own decision calibration)
    detector: str = "mtcnn"
    # MTCNN stays fp32: its int8 graphs run slower than fp32 on both backends (`edgefx bench backends`).
    detector_precision: str = "fp32"  # fp32 | int8
    threads: int | None = None  # None = all cores
    verify_hashes: bool = True
    min_face_size: int = 40
    # Smallest face searched, as a fraction of the photo's shorter side: keeps phone-size photos cheap.
    min_face_fraction: float = 0.1
    # Mirror-image test-time augmentation: measured on LFW DevTest it changed neither accuracy (99.2%) nor EER
    # (1.0%) and cost 1.6x the embedding time, so it is off (README, Accuracy).
    flip_tta: bool = False
    # HTTP service
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    token_file: Path | None = None
    max_body_bytes: int = 10 * 1024 * 1024
    max_pixels: int = 40_000_000
    workers: int = 1
    queue_size: int = 8
    explanation_ttl_s: float = 900.0
    explanation_cap: int = 64
    # Gallery (enrolment, identification): the SQLite file and the AES-GCM template key. None = the defaults of
    # edgefx.gallery (the data dir's gallery.db; the key beside it, created on first enrolment with a warning).
    db: Path | None = None
    key_file: Path | None = None
    # The open-set operating point: the false-positive identification rate the identify threshold is set for.
    identify_fpir: float = 0.01

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Defaults, then `EDGEFX_<FIELD>` variables, then the non-None `overrides`."""
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = os.environ.get(f"EDGEFX_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _parse(f.type, raw)
            except ValueError:
                raise BadArgument(f"EDGEFX_{f.name.upper()}={raw!r} is not a valid {f.type}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _parse(type_name: object, raw: str) -> object:
    text = str(type_name)
    if "bool" in text:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if "Path" in text:
        return Path(raw)
    if "float" in text:
        return float(raw)
    if "int" in text:
        return int(raw)
    return raw
