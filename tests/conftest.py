"""Shared fixtures: the LFW folder, a loaded Engine, real image bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefx.runtime.config import Settings, default_lfw_dir
from edgefx.evaluation.lfw import lfw_image_root, read_pairs


@pytest.fixture(scope="session")
def lfw_dir() -> Path:
    root = default_lfw_dir()
    if not (root / "pairsDevTest.txt").is_file():
        pytest.skip(f"LFW is not at {root} (set EDGEFX_LFW): the real-image tests need it")
    return root


@pytest.fixture(scope="session")
def lfw_images(lfw_dir: Path) -> Path:
    return lfw_image_root(lfw_dir)


@pytest.fixture(scope="session")
def devtest_pairs(lfw_dir: Path):  # type: ignore[no-untyped-def]
    return read_pairs(lfw_dir / "pairsDevTest.txt")


@pytest.fixture(scope="session")
def engine():  # type: ignore[no-untyped-def]
    from edgefx.engine import Engine

    return Engine(Settings.from_env(), load_qa=False)


@pytest.fixture(scope="session")
def matched_pair_bytes(lfw_images: Path, devtest_pairs) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    p = next(p for p in devtest_pairs if p.genuine)
    return (lfw_images / p.path_a).read_bytes(), (lfw_images / p.path_b).read_bytes()


@pytest.fixture(scope="session")
def mismatched_pair_bytes(lfw_images: Path, devtest_pairs) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    p = next(p for p in devtest_pairs if not p.genuine)
    return (lfw_images / p.path_a).read_bytes(), (lfw_images / p.path_b).read_bytes()
