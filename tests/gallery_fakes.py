"""A gallery without models: synthetic unit embeddings and stand-in faces, for the store, crypto, audit and search
tests (and the worker processes of the crash and concurrency tests)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgefx.faces.align import template
from edgefx.faces.decision import Calibration
from edgefx.faces.detection import Face
from edgefx.faces.result import PreparedFace
from edgefx.gallery.access import Gallery, TemplateIdentity
from edgefx.gallery.openset import OpenSetCalibration
from edgefx.gallery.store import GalleryStore

REPO = Path(__file__).resolve().parent.parent
SFACE = TemplateIdentity("sface", "fp32", "mtcnn", "a" * 64, "test")
DIM = 128


def verify_calibration() -> Calibration:
    """A small fitted calibration (synthetic scores), so these tests need no built model or tracked file."""
    rng = np.random.default_rng(7)
    return Calibration.fit("sface", "fp32", rng.normal(0.7, 0.1, 500), rng.normal(0.05, 0.08, 500),
                           {"recognizer": "sface", "detector": "mtcnn"})


def unit(rng: np.random.Generator, n: int = 1, dim: int = DIM) -> np.ndarray:
    x = rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fake_face(rng: np.random.Generator, label: str = "a") -> PreparedFace:
    crop = rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)
    face = Face(np.array([0, 0, 112, 112], np.float32), 0.99, template().astype(np.float32))
    return PreparedFace(label, crop, face, [], crop, np.array([[1.0, 0, 0], [0, 1.0, 0]]))


def gallery(folder: Path, identity: TemplateIdentity = SFACE, key: Path | None = None,
            open_set: OpenSetCalibration | None = None) -> Gallery:
    store = GalleryStore(folder / "gallery.db", key or folder / "gallery.key")
    return Gallery(store, identity, verify_calibration(), open_set, 0.01)


def enrol(g: Gallery, subject: str, embeddings: np.ndarray, keep_crop: bool = False, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    faces = [fake_face(rng, str(i + 1)) for i in range(len(embeddings))]
    return g.enroll(subject, f"Name {subject}", faces, embeddings, keep_crop, {}, {}).template_ids


def worker(folder: str, prefix: str, count: int, templates: int) -> None:
    """Enrol `count` subjects of `templates` templates each and identify after each (a crash/concurrency worker)."""
    g = gallery(Path(folder))
    rng = np.random.default_rng(abs(hash(prefix)) % 2**32)
    for i in range(count):
        enrol(g, f"{prefix}{i:04d}", unit(rng, templates), seed=i)
        g.identify(fake_face(rng), unit(rng)[0], 3, False, {}, {})
        print(json.dumps({"enrolled": f"{prefix}{i:04d}"}), flush=True)


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
