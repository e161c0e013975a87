"""Facial regions and the explainability table: geometry, shares summing to 100, ranks, agreement figures."""

from __future__ import annotations

import numpy as np
import pytest

from edgefx.runtime.errors import InvalidRequest
from edgefx.explain.regions import (
    RANK_BY,
    REGION_METHOD,
    REGIONS,
    TEMPLATE,
    agreement,
    explainability_table,
    kendall_tau_b,
    region_check,
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
            best = max(sel, key=lambda r: r[RANK_BY])
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


def _planted(labels: np.ndarray) -> np.ndarray:
    """A faint spread over the forehead (most mass: the largest region) and a bright spot on the subject's left eye
    (most mass per pixel): the two map rankings must disagree on the top region."""
    forehead = labels == REGIONS.index("forehead") + 1
    eye = labels == REGIONS.index("left_eye") + 1
    sal = np.zeros((112, 112), np.float32)
    sal[forehead] = 0.2
    sal[eye] = 1.0
    assert sal[forehead].sum() > sal[eye].sum()  # the plant itself: more mass on the forehead
    return sal


def test_each_map_ranking_is_computed_from_the_map() -> None:
    labels = region_labels()
    maps = {"a": {"average": _planted(labels)}}
    top = {rank_by: next(r["region"] for r in explainability_table(maps, rank_by=rank_by) if r["rank"] == 1)
           for rank_by in ("share", "density")}
    assert top == {"share": "forehead", "density": "left_eye"}
    # moved to another place, the plant moves the top region with it: nothing is fixed in advance
    nose = (labels == REGIONS.index("nose") + 1).astype(np.float32)
    moved = explainability_table({"a": {"average": 0.05 * (labels > 0) + nose}}, rank_by="density")
    assert next(r["region"] for r in moved if r["rank"] == 1) == "nose"
    with pytest.raises(InvalidRequest):
        explainability_table(maps, rank_by="area")


def test_region_removal_rows_rank_by_the_drop_and_a_map_below_a_random_region_is_weak() -> None:
    labels = region_labels()
    drops = np.zeros(len(REGIONS))
    drops[REGIONS.index("nose")] = 0.09
    drops[REGIONS.index("left_eye")] = 0.01
    drops[REGIONS.index("chin")] = -0.02  # removing it raised the score
    maps = {"a": {"average": _planted(labels), "single_removal": (labels == REGIONS.index("nose") + 1) * 1.0}}
    rows = explainability_table(maps, {"a": labels}, {"a": drops}, rank_by="density")
    direct = {r["region"]: r for r in rows if r["method"] == REGION_METHOD}
    assert direct["nose"]["rank"] == 1 and direct["chin"]["rank"] == 10 and direct["nose"]["drop"] == 0.09
    assert direct["nose"]["share"] == 90.0 and direct["chin"]["share"] == 0.0
    check = region_check(rows, {"a": drops})["a"]
    # mean drop over the ten regions is 0.008: the left eye's 0.01 beats it, the nose's 0.09 too
    assert check["single_removal"] == {"top_region": "nose", "top_drop": 0.09, "random_drop": 0.008, "weak": False}
    assert check["average"]["top_region"] == "left_eye" and not check["average"]["weak"]
    drops[REGIONS.index("left_eye")] = 0.0
    assert region_check(rows, {"a": drops})["a"]["average"]["weak"]
    assert agreement(rows, "density")["a"]["voters"] == 1  # S- votes; Avg (their mean) and the direct row do not


def _turned() -> np.ndarray:
    """Synthetic landmarks of a head turned ~30 degrees: the eyes closer (the far one more), the nose tip swung 11 px
    toward the image's right, the mouth a little."""
    pts = TEMPLATE.astype(np.float64).copy()
    pts[0, 0] += 4.0
    pts[1, 0] -= 2.0
    pts[2, 0] += 11.0
    pts[3, 0] += 4.0
    pts[4, 0] += 2.0
    return pts


def test_regions_of_a_turned_face_sit_on_its_eyes_nose_and_mouth() -> None:
    pts = _turned()
    labels = region_labels(pts)
    for name, point in (("right_eye", pts[0]), ("left_eye", pts[1]), ("nose", pts[2]), ("mouth", pts[3:].mean(0))):
        assert labels[int(round(point[1])), int(round(point[0]))] == REGIONS.index(name) + 1, name
    # each eye region is centred on its own eye (a single similarity fit put the far eye 4.5 px off)
    for name, point in (("right_eye", pts[0]), ("left_eye", pts[1])):
        x, y = _centroid(name, labels)
        assert abs(x - point[0]) < 1.0 and abs(y - point[1]) < 1.0, name
    # at the nose tip's height the nose region is centred near the tip, not on the face's midline
    cols = np.nonzero(labels[int(round(pts[2, 1]))] == REGIONS.index("nose") + 1)[0]
    assert abs((cols.min() + cols.max()) / 2 - pts[2, 0]) < 3.0
    masks = region_masks(labels)
    assert masks.sum(axis=0).max() == 1 and all(m.sum() > 40 for m in masks)
    # the nose swung toward the image's right: that half of the face is the far one, foreshortened
    def width(name: str) -> int:
        return int(np.ptp(np.nonzero(labels == REGIONS.index(name) + 1)[1]))

    assert width("left_eye") < width("right_eye") and width("left_cheek") < width("right_cheek")
    frontal = region_labels(TEMPLATE + 0.5)
    assert width("right_eye") == pytest.approx(np.ptp(np.nonzero(frontal == REGIONS.index("right_eye") + 1)[1]), abs=1)
    # the eyebrows stay above their eyes, the mouth between the cheeks
    assert _centroid("right_eyebrow", labels)[1] < _centroid("right_eye", labels)[1]
    assert _centroid("right_cheek", labels)[0] < _centroid("mouth", labels)[0] < _centroid("left_cheek", labels)[0]
