"""Builds the configured face detector and recognizer from the manifest: the one place that picks them."""

from __future__ import annotations

from typing import Any, Callable

from edgefx.faces.mtcnn import MTCNN
from edgefx.faces.sface import SFace
from edgefx.faces.yunet import YuNet
from edgefx.runtime.backend import Model, load_model
from edgefx.runtime.config import Settings
from edgefx.runtime.errors import ModelError


DETECTORS = ("mtcnn", "yunet")


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


def load_face_models(s: Settings) -> tuple[MTCNN | YuNet, SFace, str]:
    """The face detector and the SFace recognizer on the configured backend (and the recognizer backend's name)."""
    detector = load_detector(s)
    sface = load_model("sface", s.precision, backend=s.backend, device=s.device, threads=s.threads,
                       models_dir=s.models_dir, verify_hashes=s.verify_hashes)
    return detector, SFace(sface, flip_tta=s.flip_tta), sface.backend
