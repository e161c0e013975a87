"""`edgefx bench verify` puts every edgefx pipeline and the OpenCV peer through the same pairs, side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from edgefx.evaluation.bench import RECOGNIZER_CONFIGS, VERIFY_CONFIGS, YUNET_CONFIGS, bench_verify, yunet_path


def test_bench_verify_interleaves_every_pipeline_with_the_peer(lfw_dir: Path) -> None:
    if not yunet_path().is_file():
        pytest.skip(f"the OpenCV peer's YuNet is not at {yunet_path()}: `python -m export all` installs it")
    report = bench_verify(argparse.Namespace(lfw=str(lfw_dir), pairs=2, repeats=2, threads=2, models_dir=None))
    assert report["interleaved"]
    rows = report["results"]
    assert [r["name"] for r in rows[:-1]] == ([f"edgefx {b} {p}" for b, p in VERIFY_CONFIGS]
                                              + [f"edgefx {b} {p} yunet" for b, p in YUNET_CONFIGS]
                                              + [f"edgefx {b} {p} {r}" for b, p, r in RECOGNIZER_CONFIGS])
    assert rows[-1]["name"].startswith("OpenCV peer")
    for row in rows:
        assert "error" not in row, row
        assert row["pair"]["n"] == 4 and row["pair"]["median_ms"] > 0
        assert {"detect", "embed"} <= set(row["stages"])
    for row in rows[:-1]:
        assert row["ratio_to_peer"] == pytest.approx(row["pair"]["median_ms"] / rows[-1]["pair"]["median_ms"],
                                                     abs=1e-3)


def test_bench_reports_say_how_loaded_the_machine_was(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from edgefx.cli.bench import reporting

    out = tmp_path / "report.json"
    handler = reporting(lambda args: {"benchmark": "stub", "results": []})
    assert handler(argparse.Namespace(json=True, out=str(out))) == 0
    load = json.loads(out.read_text())["load_average_1min"]
    assert set(load) == {"start", "end"} and all(v >= 0 for v in load.values())
    assert json.loads(capsys.readouterr().out) == json.loads(out.read_text())
    machine = json.loads(out.read_text())["machine"]  # every bench report names the CPU and its vector extensions
    assert machine["cpu"] and isinstance(machine["vector_extensions"], list) and machine["cores"] >= 1
