"""The explain benchmark and the faithfulness evaluation, on a cheap toy embedder (no model, no LFW)."""

from __future__ import annotations

import numpy as np

from edgefx.evaluation.region_eval import region_rankings
from edgefx.evaluation.saliency_eval import auc, bench_explain_pairs, faithfulness
from edgefx.explain.regions import REGIONS, region_labels, region_masks
from edgefx.explain.saliency import METHODS, explain_pair
from edgefx.explain.windows import composite, neutral_fill
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
    assert report["reference_passes"] >= report["passes_total"] - report["passes"]["region_removal"]
    assert report["passes"]["region_removal"] == 2 * len(REGIONS)  # timed as an explanation runs: regions included
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


def test_region_rankings_come_from_the_maps_and_the_measured_changes() -> None:
    labels = region_labels()
    forehead, eye = labels == REGIONS.index("forehead") + 1, labels == REGIONS.index("left_eye") + 1
    sal = np.where(forehead, 0.2, 0.0) + np.where(eye, 1.0, 0.0)  # more mass on the forehead, denser on the eye
    drops, gains = np.zeros(10), np.zeros(10)
    drops[REGIONS.index("nose")], gains[REGIONS.index("mouth")] = 0.3, 0.2
    orders = region_rankings({"average": sal}, labels, drops, gains)
    first = {name: REGIONS[int(order[0])] for name, order in orders.items()}
    assert first == {"share:average": "forehead", "density:average": "left_eye", "region_removal": "nose",
                     "region_aggregation": "mouth"}


def test_region_drops_of_a_pair_are_the_score_drops_of_each_region_removed() -> None:
    a, b = _toy_pair(2)
    embed = ToyEmbedder()
    masks = region_masks().astype(np.float32)
    ex = explain_pair(a, b, embed, threshold=0.5, methods=["single_removal"], grid=4, regions=[masks, masks])
    e = embed(np.stack([a, b]).astype(np.float32))
    crop = a.astype(np.float32)
    removed = embed(composite(crop, neutral_fill(crop, "blur"), 1.0 - masks))
    assert np.allclose(ex.region_drops["a"], e[0] @ e[1] - removed @ e[1], atol=1e-5)
    assert ex.passes["region_removal"] == 2 * len(REGIONS)


def test_region_level_test_reports_every_ranking_against_random_regions() -> None:
    a, b = _toy_pair(4)
    report = faithfulness([((a, b), True), ((b, a), False)], ToyEmbedder(), threshold=0.5, grid=4, greedy_steps=2,
                          random_orders=1, region_draws=3)
    regions = report["regions"]
    assert regions["matched"]["faces"] == 2 and regions["all"]["faces"] == 4
    for mode in ("removal", "removal_other_fill", "reveal"):
        names = set(regions["all"][mode])
        assert {f"{r}:{m}" for r in ("share", "density") for m in METHODS} | {"region_removal", "random"} <= names
    # removing the region whose own removal drops the score most can not do worse than a random region
    direct = regions["all"]["removal"]["region_removal"]
    assert direct["top1_mean"] >= regions["all"]["removal"]["random"]["top1_mean"]
    face = report["faces"][0]["regions"]
    assert face["removal"]["region_removal"]["top1"] == max(
        face["removal"][name]["top1"] for name in face["removal"] if name not in ("random", "all_regions_mean"))
