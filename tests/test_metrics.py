"""LFW pair files, verification metrics and the calibrated decision, on known numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgefx.evaluation.lfw import auc, eer, fnmr_at_fmr, read_pairs, ten_fold_accuracy
from edgefx.faces.decision import Calibration, best_accuracy_threshold


def test_read_view1_and_view2(tmp_path: Path) -> None:
    v1 = tmp_path / "v1.txt"
    v1.write_text("2\nA 1 2\nB 1 3\nA 1 B 2\nC 4 D 1\n")
    pairs = read_pairs(v1)
    assert [p.genuine for p in pairs] == [True, True, False, False]
    assert pairs[0].path_a == "A/A_0001.jpg" and pairs[3].path_b == "D/D_0001.jpg"
    v2 = tmp_path / "pairs.txt"
    lines = ["2 1", "A 1 2", "A 1 B 1", "C 1 2", "C 1 D 1"]
    v2.write_text("\n".join(lines) + "\n")
    pairs = read_pairs(v2)
    assert [p.fold for p in pairs] == [0, 0, 1, 1]
    v2.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(ValueError):
        read_pairs(v2)


def test_metrics_on_separable_and_overlapping_scores() -> None:
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    assert auc(scores, labels) == pytest.approx(1.0)
    assert eer(scores, labels) == pytest.approx(0.0)
    overlapping = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.4, 0.2, 0.1])  # one genuine below one impostor
    assert eer(overlapping, labels) == pytest.approx(0.25)
    assert auc(overlapping, labels) == pytest.approx(14 / 16)  # 14 of 16 genuine-impostor orderings right
    assert fnmr_at_fmr(overlapping, labels, 1e-3) is None  # 4 impostors cannot resolve FMR 1e-3
    assert fnmr_at_fmr(overlapping, labels, 0.25) == pytest.approx(0.25)
    assert fnmr_at_fmr(overlapping, labels, 0.5) == pytest.approx(0.0)


def test_threshold_and_ten_fold() -> None:
    rng = np.random.default_rng(1)
    genuine, impostor = rng.normal(0.6, 0.1, 3000), rng.normal(0.1, 0.1, 3000)
    t = best_accuracy_threshold(genuine, impostor)
    assert abs(t - 0.35) < 0.03
    scores = np.concatenate([genuine, impostor])
    labels = np.concatenate([np.ones(3000), np.zeros(3000)]).astype(int)
    folds = np.concatenate([np.arange(3000) % 10, np.arange(3000) % 10])
    mean, std, accs = ten_fold_accuracy(scores, labels, folds)
    assert len(accs) == 10 and 0.98 < mean < 0.995


def test_pic_confidence_is_a_posterior() -> None:
    rng = np.random.default_rng(2)
    cal = Calibration.fit("sface", "fp32", rng.normal(0.6, 0.1, 1100), rng.normal(0.1, 0.1, 1100))
    assert cal.confidence(0.9) > 0.999 and cal.confidence(-0.2) < 0.001
    assert cal.confidence(cal.threshold) == pytest.approx(0.5, abs=0.15)
    match, conf = cal.decide(0.05)
    assert not match and conf > 0.99
    again = Calibration.from_dict(cal.to_dict())
    assert again.confidence(0.4) == pytest.approx(cal.confidence(0.4), abs=1e-6)
