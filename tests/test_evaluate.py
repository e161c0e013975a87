"""`edgefx eval lfw` on real LFW images: View 1 and View 2 files, the calibrated accuracy, its errors, failures to acquire."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgefx.evaluation.lfw_eval import evaluate_lfw


def _pairs_file(path: Path, header: str, matched: list[str], mismatched: list[str]) -> Path:
    path.write_text("\n".join([header, *matched, *mismatched]) + "\n")
    return path


def _devtest_lines(lfw_dir: Path) -> tuple[list[str], list[str]]:
    lines = [ln for ln in (lfw_dir / "pairsDevTest.txt").read_text().splitlines()[1:] if ln.strip()]
    return [ln for ln in lines if len(ln.split()) == 3], [ln for ln in lines if len(ln.split()) == 4]


def test_view1_report_lists_its_errors_and_failures_to_acquire(tmp_path: Path, lfw_dir: Path, engine) -> None:  # type: ignore[no-untyped-def]
    matched, mismatched = _devtest_lines(lfw_dir)
    hard = "Cristina_Fernandez\t1\t2"  # a genuine DevTest pair SFace scores at 0.08 (age, make-up)
    no_face = "Marilyn_Monroe\t1\tAbdullah_Gul\t13"  # DevTrain's one image where MTCNN finds no face
    assert hard in matched
    pairs = _pairs_file(tmp_path / "v1.txt", "7", matched[:6] + [hard], mismatched[:6] + [no_face])
    threshold = engine.calibration.threshold
    report, curves = evaluate_lfw(lfw_dir, pairs, engine.detector, engine.recognizer, threshold)
    assert report["protocol"] == "view1" and report["n_pairs"] == 14
    assert report["fta"] == {"images": 1, "pairs": 1, "image_rate": pytest.approx(1 / report["n_images"])}
    wrong = {(e["a"], e["b"]) for e in report["errors"]}
    assert ("Cristina_Fernandez/Cristina_Fernandez_0001.jpg", "Cristina_Fernandez/Cristina_Fernandez_0002.jpg") in wrong
    assert all((e["score"] >= threshold) != e["genuine"] for e in report["errors"])
    assert report["accuracy"] == pytest.approx(1 - len(report["errors"]) / 14)
    assert report["oracle_accuracy"] >= report["accuracy"]
    assert 0.0 <= report["eer"] <= 0.5 and 0.5 <= report["auc"] <= 1.0
    assert set(curves) == {"pairs"}


def test_view2_file_gives_per_fold_accuracy(tmp_path: Path, lfw_dir: Path, engine) -> None:  # type: ignore[no-untyped-def]
    matched, mismatched = _devtest_lines(lfw_dir)
    # Two folds of 3 + 3 in the `folds per_fold` layout of pairs.txt.
    lines = matched[:3] + mismatched[:3] + matched[3:6] + mismatched[3:6]
    pairs = _pairs_file(tmp_path / "pairs.txt", "2 3", lines, [])
    report, _ = evaluate_lfw(lfw_dir, pairs, engine.detector, engine.recognizer, None)
    assert report["protocol"] == "view2-10fold" and len(report["fold_accuracy"]) == 2
    assert report["accuracy"] == pytest.approx(sum(report["fold_accuracy"]) / 2)
    assert report["fta"]["images"] == 0
