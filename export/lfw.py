"""LFW photos for the model build: calibration (DevTrain) and held-out parity checks (DevTest)."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent


def root() -> Path:
    return Path(os.environ.get("EDGEFX_LFW", REPO.parent / "shared" / "lfw"))


def available() -> bool:
    return (root() / "lfw-deepfunneled").is_dir() and (root() / "pairsDevTrain.txt").is_file()


def missing_reason() -> str:
    return f"LFW not found at {root()} (set EDGEFX_LFW to the folder holding lfw-deepfunneled/ and pairsDevTrain.txt)"


def _pair_images(split: str) -> list[Path]:
    """Every distinct photo named by pairsDev{Train,Test}.txt, in file order."""
    lines = (root() / f"pairsDev{split.capitalize()}.txt").read_text().split("\n")[1:]
    seen: dict[Path, None] = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            names = [(parts[0], parts[1]), (parts[0], parts[2])]
        elif len(parts) == 4:
            names = [(parts[0], parts[1]), (parts[2], parts[3])]
        else:
            continue
        for person, index in names:
            seen[root() / "lfw-deepfunneled" / person / f"{person}_{int(index):04d}.jpg"] = None
    return list(seen)


def sample_images(count: int, split: str = "train") -> list[Path]:
    """`count` photos spread evenly over the split's pair list (deterministic, covers matched and mismatched)."""
    images = _pair_images(split)
    picks = np.linspace(0, len(images) - 1, num=min(count, len(images))).round().astype(int)
    return [images[i] for i in dict.fromkeys(picks.tolist())]


def images_in(folder: Path, count: int) -> list[Path]:
    """Up to `count` .jpg/.png photos under a user-given calibration folder, evenly spread, sorted."""
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    picks = np.linspace(0, len(found) - 1, num=min(count, len(found))).round().astype(int) if found else []
    return [found[i] for i in dict.fromkeys(list(picks))]


def load_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
