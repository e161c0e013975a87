"""The explain benchmark and the faithfulness evaluation, on a cheap toy embedder (no model, no LFW)."""

from __future__ import annotations

import numpy as np

from edgefx.evaluation.saliency_eval import auc, bench_explain_pairs, faithfulness
from edgefx.explain.saliency import METHODS
from tests.test_saliency import ToyEmbedder, _toy_pair


def test_bench_reports_speedup_passes_and_order_agreement_against_the_reference() -> None:
    pairs = [_toy_pair(1), _toy_pair(5)]
    embed = ToyEmbedder()
    report = bench_explain_pairs(pairs, embed, threshold=0.5, grid=4, greedy_steps=4)
    assert report["pairs"] == 2
    assert report["speedup"] > 0 and report["reference_loop_ms"] > 0
    assert report["order_agreement"]["traces"] == 2 * 2 * 2  # pairs x faces x greedy methods
    assert 0 <= report["order_agreement"]["identical_traces"] <= report["order_agreement"]["traces"]
    # where the lazy order is the full one, the maps are the reference's
    assert report["max_abs_map_diff_where_order_agrees"] <= 1e-3
    n = 12  # 4 x 4 grid without its corners
    assert report["passes"]["single_removal"] == 2 * n + 2
    assert report["passes"]["single_aggregation"] == 2 * (n + 1)
    # the plain loop scores every available window at every greedy step: never fewer passes than the fast one
    assert report["reference_passes"] >= report["passes_total"]
    assert set(report["load_average_1min"]) == {"start", "end"}


def test_faithfulness_curves_start_at_the_original_and_canvas_scores() -> None:
    a, b = _toy_pair(3)
    embed = ToyEmbedder()
    report = faithfulness([((a, b), True)], embed, threshold=0.5, grid=4, greedy_steps=3, random_orders=2)
    e = embed(np.stack([a, b]).astype(np.float32))
    face = report["faces"][0]
    for m in (*METHODS, "random"):
        assert face["deletion_curves"][m][0] == np.float32(e[0] @ e[1]).round(4)
        assert len(face["deletion_curves"][m]) == 12 + 1
    assert set(report["summary"]["matched"]) >= {*METHODS, "random", "faces"}
    assert auc(np.ones(5))[0] == 1.0 and auc(np.array([1.0, 0.0]))[0] == 0.5
