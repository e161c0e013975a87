"""Facial regions and the explainability table: geometry, shares summing to 100, ranks, agreement figures."""

from __future__ import annotations

import numpy as np
import pytest

from edgefx.runtime.errors import InvalidRequest
from edgefx.explain.regions import (
    REGIONS,
    TEMPLATE,
    agreement,
    explainability_table,
    kendall_tau_b,
    region_labels,
    region_masks,
    shares_percent,
)

METHODS = ("single_removal", "greedy_removal", "single_aggregation", "greedy_aggregation", "average")


def _centroid(name: str, labels: np.ndarray | None = None) -> tuple[float, float]:
    ys, xs = np.nonzero((region_labels() if labels is None else labels) == REGIONS.index(name) + 1)
    return float(xs.mean()), float(ys.mean())


def test_every_region_is_present_and_disjoint() -> None:
    masks = region_masks()
    assert masks.shape == (10, 112, 112)
    assert masks.sum(axis=0).max() == 1  # no pixel in two regions
    assert all(m.sum() > 100 for m in masks)


def test_regions_sit_where_the_landmarks_are_and_sides_are_the_subjects() -> None:
    labels = region_labels()
    # the image-left eye landmark is the subject's right eye
    assert labels[int(TEMPLATE[0, 1]), int(TEMPLATE[0, 0])] == REGIONS.index("right_eye") + 1
    assert labels[int(TEMPLATE[1, 1]), int(TEMPLATE[1, 0])] == REGIONS.index("left_eye") + 1
    assert labels[int(TEMPLATE[2, 1]), int(TEMPLATE[2, 0])] == REGIONS.index("nose") + 1
    mouth = TEMPLATE[3:].mean(axis=0)
    assert labels[int(mouth[1]), int(mouth[0])] == REGIONS.index("mouth") + 1
    assert _centroid("left_cheek")[0] > 56 > _centroid("right_cheek")[0]
    assert _centroid("left_eyebrow")[0] > 56 > _centroid("right_eyebrow")[0]
    ys = {r: _centroid(r)[1] for r in REGIONS}
    assert ys["forehead"] < ys["left_eyebrow"] < ys["left_eye"] < ys["nose"] < ys["mouth"] < ys["chin"]


def test_regions_follow_the_faces_own_landmarks() -> None:
    assert np.array_equal(region_labels(TEMPLATE), region_labels())
    shifted = region_labels(TEMPLATE + np.array([6.0, 3.0], np.float32))
    x0, y0 = _centroid("nose")
    x1, y1 = _centroid("nose", shifted)
    assert x1 - x0 == pytest.approx(6.0, abs=0.5) and y1 - y0 == pytest.approx(3.0, abs=0.5)
    with pytest.raises(InvalidRequest):
        region_labels(np.zeros((4, 2)))
    with pytest.raises(InvalidRequest):
        region_labels(np.zeros((5, 2)))  # all points equal: no transform


def _random_maps(seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {img: {m: rng.uniform(0, 1, (112, 112)).astype(np.float32) ** 3 for m in METHODS} for img in ("a", "b")}


def test_shares_sum_to_100_per_method_and_image_and_ranks_are_a_permutation() -> None:
    rows = explainability_table(_random_maps())
    assert len(rows) == 2 * len(METHODS) * len(REGIONS)
    assert set(rows[0]) == {"method", "image", "region", "share", "rank", "density"}
    for img in ("a", "b"):
        for m in METHODS:
            sel = [r for r in rows if r["image"] == img and r["method"] == m]
            assert round(sum(r["share"] for r in sel), 6) == 100.0
            assert round(sum(r["density"] for r in sel), 6) == 100.0
            assert sorted(r["rank"] for r in sel) == list(range(1, 11))
            best = max(sel, key=lambda r: r["share"])
            assert best["rank"] == 1


def test_a_map_inside_one_region_gives_it_all_the_share() -> None:
    labels = region_labels()
    nose = (labels == REGIONS.index("nose") + 1).astype(np.float32)
    rows = explainability_table({"a": {"single_removal": nose}})
    by_region = {r["region"]: r for r in rows}
    assert by_region["nose"]["share"] == 100.0 and by_region["nose"]["rank"] == 1
    assert by_region["nose"]["density"] == 100.0
    flat = explainability_table({"a": {"single_removal": np.ones((112, 112), np.float32)}})
    assert {r["density"] for r in flat} == {10.0}  # a flat map: equal density, shares follow the areas
    assert sum(r["share"] for r in rows) == 100.0


def test_shares_rounding_and_zero_maps() -> None:
    s = shares_percent(np.array([1.0, 1.0, 1.0] + [0.0] * 7))
    assert s.sum() == pytest.approx(100.0) and sorted(s[:3]) == [33.3, 33.3, 33.4]
    assert shares_percent(np.zeros(10)).tolist() == [10.0] * 10
    with pytest.raises(InvalidRequest):
        explainability_table({"a": {"single_removal": np.zeros((50, 50), np.float32)}})


def test_kendall_tau_b_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.integers(0, 5, 10).astype(float)
        y = rng.integers(0, 5, 10).astype(float)
        expected = stats.kendalltau(x, y).statistic
        got = kendall_tau_b(x, y)
        if np.isnan(expected):
            assert got is None
        else:
            assert got == pytest.approx(expected, abs=1e-12)
    assert kendall_tau_b([1, 1, 1], [1, 2, 3]) is None


def test_agreement_votes_and_tau() -> None:
    labels = region_labels()
    nose = (labels == REGIONS.index("nose") + 1).astype(np.float32)
    mouth = (labels == REGIONS.index("mouth") + 1).astype(np.float32)
    ramp = np.linspace(0, 1, 112, dtype=np.float32)[None, :].repeat(112, 0)
    maps = {"a": {"single_removal": nose + 0.1 * ramp, "greedy_removal": nose + 0.1 * ramp,
                  "single_aggregation": nose * 0.5 + mouth, "greedy_aggregation": nose + 0.1 * ramp,
                  "average": mouth}}
    agree = agreement(explainability_table(maps))["a"]
    assert agree["top_region"] == "nose" and agree["top_region_votes"] == 3 and agree["voters"] == 4
    assert agree["kendall_tau"] is not None and -1.0 <= agree["kendall_tau"] <= 1.0
    same = agreement(explainability_table({"a": {m: nose + 0.1 * ramp for m in METHODS}}))["a"]
    assert same["kendall_tau"] == 1.0 and same["top_region_votes"] == 4
