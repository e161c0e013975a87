"""Builds the configured face detector and recognizer from the manifest: the one place that picks them."""

from __future__ import annotations

from typing import Any, Callable

from edgefx.faces.arcface import ArcFace
from edgefx.faces.fusion import Fusion
from edgefx.faces.mtcnn import MTCNN
from edgefx.faces.recognizer import OnnxEmbedder, Recognizer
from edgefx.faces.sface import SFace
from edgefx.faces.yunet import YuNet
from edgefx.runtime.backend import Model, load_model
from edgefx.runtime.config import Settings
from edgefx.runtime.errors import ModelError


DETECTORS = ("mtcnn", "yunet")
RECOGNIZERS = ("sface", "arcface", "fusion")
EMBEDDERS: dict[str, type[OnnxEmbedder]] = {"sface": SFace, "arcface": ArcFace}


def load_detector(s: Settings, threads: int | None = 1, wrap: Callable[[Model], Any] = lambda net: net) -> MTCNN | YuNet:
    """The configured face detector. One thread per net by default: MTCNN's tensors are too small for a second thread
    to help (11.2 vs 11.0 ms per 250x250 photo, `edgefx bench backends`); the Engine detects the two photos of a pair
    in parallel instead. `wrap` sees each net as it loads (`edgefx detect --repeat` times them)."""
    if s.detector not in DETECTORS:
        raise ModelError(f"unknown detector {s.detector!r}; choose one of {', '.join(DETECTORS)}")
    common: dict[str, Any] = dict(backend=s.backend, device=s.device, threads=threads, models_dir=s.models_dir,
                                  verify_hashes=s.verify_hashes)
    if s.detector == "yunet":
        return YuNet(wrap(load_model("yunet", "fp32", **common)))
    nets = [wrap(load_model(name, s.detector_precision, **common)) for name in ("pnet", "rnet", "onet")]
    return MTCNN(*nets, min_face_size=s.min_face_size, min_face_fraction=s.min_face_fraction)


def recognizer_models(name: str) -> tuple[str, ...]:
    """The manifest models a recognizer runs (fusion: both embedders); ModelError for an unknown name."""
    if name not in RECOGNIZERS:
        raise ModelError(f"unknown recognizer {name!r}; choose one of {', '.join(RECOGNIZERS)}")
    return tuple(EMBEDDERS) if name == "fusion" else (name,)


def load_recognizer(s: Settings) -> Recognizer:
    """The configured recognizer (`Settings.recognizer`) in `Settings.precision` on the configured backend."""
    parts = []
    for model_name in recognizer_models(s.recognizer):
        model = load_model(model_name, s.precision, backend=s.backend, device=s.device, threads=s.threads,
                           models_dir=s.models_dir, verify_hashes=s.verify_hashes)
        parts.append(EMBEDDERS[model_name](model, flip_tta=s.flip_tta))
    return parts[0] if len(parts) == 1 else Fusion(parts[0], parts[1], weight=s.fusion_weight)


def load_face_models(s: Settings) -> tuple[MTCNN | YuNet, Recognizer, str]:
    """The face detector and the configured recognizer (and the recognizer backend's name)."""
    recognizer = load_recognizer(s)  # first: an unknown recognizer fails before any model loads
    return load_detector(s), recognizer, recognizer.model.backend
