"""Saliency maps: the vectorised maps equal the plain reference loop's, pass counts are honest, bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from edgefx.runtime.errors import InvalidRequest
from edgefx.explain.regions import REGIONS, explainability_table, region_labels
from edgefx.explain.saliency import METHODS, explain_pair
from edgefx.explain.windows import gaussian_windows, neutral_fill, window_centers
from tests.reference_saliency import reference_explain


class ToyEmbedder:
    """A small fixed nonlinear network (8x8 pooling, tanh layer, projection): cheap, deterministic, not additive."""

    def __init__(self, seed: int = 0, gain: float = 3.0) -> None:
        self.gain = gain
        rng = np.random.default_rng(seed)
        self.w1 = rng.normal(size=(8 * 8 * 3, 96)).astype(np.float32) / 8.0
        self.w2 = rng.normal(size=(96, 128)).astype(np.float32)
        self.images = 0
        self.calls = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        x = np.asarray(batch, np.float32)
        assert x.ndim == 4 and x.shape[1:] == (112, 112, 3)
        self.images += len(x)
        self.calls += 1
        pooled = x.reshape(len(x), 8, 14, 8, 14, 3).mean(axis=(2, 4)).reshape(len(x), -1) / 255.0 - 0.5
        e = np.tanh(pooled @ self.w1 * self.gain) @ self.w2
        return (e / np.linalg.norm(e, axis=1, keepdims=True)).astype(np.float32)


def _toy_pair(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, size=(8, 8, 3))
    big = np.kron(base, np.ones((14, 14, 1)))
    a = np.clip(big + rng.normal(0, 20, big.shape), 0, 255).astype(np.uint8)
    b = np.clip(big + rng.normal(0, 20, big.shape), 0, 255).astype(np.uint8)
    return a, b


def _orders(ex, image):  # type: ignore[no-untyped-def]
    return {m: t.order for m, t in ex.traces[image].items()}


@pytest.mark.parametrize("fill", ["blur", "mean"])
def test_full_greedy_maps_equal_reference(fill: str) -> None:
    a, b = _toy_pair()
    embed = ToyEmbedder()
    fast = explain_pair(a, b, embed, threshold=0.5, grid=4, fill=fill, greedy_steps=6, greedy="full")
    ref = reference_explain(a, b, embed, threshold=0.5, grid=4, fill=fill, greedy_steps=6)
    assert fast.score == pytest.approx(ref["score"], abs=1e-6)
    for image in ("a", "b"):
        assert _orders(fast, image) == ref["orders"][image]
        for m in METHODS:
            assert np.abs(fast.maps[image][m] - ref["maps"][image][m]).max() <= 1e-3, (image, m)


def test_lazy_greedy_matches_reference_where_order_agrees_and_costs_fewer_passes() -> None:
    a, b = _toy_pair(5)
    # a nearly linear embedder: removal/reveal gains barely interact, the case lazy greedy is exact for
    full_embed, lazy_embed = ToyEmbedder(gain=0.3), ToyEmbedder(gain=0.3)
    full = explain_pair(a, b, full_embed, threshold=0.5, grid=5, greedy_steps=8, greedy="full")
    lazy = explain_pair(a, b, lazy_embed, threshold=0.5, grid=5, greedy_steps=8, greedy="lazy")
    ref = reference_explain(a, b, ToyEmbedder(gain=0.3), threshold=0.5, grid=5, greedy_steps=8)
    compared = 0
    for image in ("a", "b"):
        for m in ("greedy_removal", "greedy_aggregation"):
            if lazy.traces[image][m].order == ref["orders"][image][m]:
                assert np.abs(lazy.maps[image][m] - ref["maps"][image][m]).max() <= 1e-3
                compared += 1
    assert compared >= 1  # on this pair the lazy order must agree at least once, or the comparison is empty
    for m in ("greedy_removal", "greedy_aggregation"):
        assert lazy.passes[m] < full.passes[m]
    assert lazy_embed.images == sum(lazy.passes.values())
    assert full_embed.images == sum(full.passes.values())


def test_maps_shape_range_and_pass_counts() -> None:
    a, b = _toy_pair(5)
    embed = ToyEmbedder()
    ex = explain_pair(a, b, embed, threshold=0.2, grid=5, greedy_steps=4)
    assert set(ex.maps) == {"a", "b"}
    for image in ("a", "b"):
        assert set(ex.maps[image]) == set(METHODS)
        for m in METHODS:
            sal = ex.maps[image][m]
            assert sal.shape == (112, 112) and sal.dtype == np.float32
            assert sal.min() >= 0.0 and sal.max() <= 1.0
    n = 21  # 5 x 5 grid without its 4 corner windows
    assert ex.passes["single_removal"] == 2 * n + 2  # both faces + the two reference embeddings
    assert ex.passes["single_aggregation"] == 2 * (n + 1)  # + the neutral canvas per face
    assert ex.passes["average"] == 0
    assert embed.images == sum(ex.passes.values())
    for image in ("a", "b"):
        for m in ("greedy_removal", "greedy_aggregation"):
            assert len(ex.traces[image][m].order) <= 4
            assert len(set(ex.traces[image][m].order)) == len(ex.traces[image][m].order)


def test_both_faces_and_methods_share_batches() -> None:
    """The single maps of both faces are one embedding call; the four greedy traces advance in shared rounds."""
    a, b = _toy_pair(5)
    embed = ToyEmbedder()
    explain_pair(a, b, embed, threshold=0.5, methods=["single_removal", "single_aggregation"], grid=5)
    assert embed.calls == 1 and embed.images == 2 + 2 * 21 + 2 * 22
    embed = ToyEmbedder()
    ex = explain_pair(a, b, embed, threshold=0.5, grid=5, greedy_steps=6, greedy="full")
    steps = max(len(t.order) for image in ("a", "b") for t in ex.traces[image].values())
    assert steps >= 2
    # full greedy: each round is one step of every trace still running (step 1 reuses the single scores)
    assert embed.calls == 1 + max(steps - 1, 0)


def test_known_embeddings_save_passes_and_inputs_are_not_changed() -> None:
    a, b = _toy_pair(7)
    a0, b0 = a.copy(), b.copy()
    embed = ToyEmbedder()
    e = embed(np.stack([a, b]))
    embed.images = 0
    ex = explain_pair(a, b, embed, threshold=0.5, methods=["single_removal"], embeddings=(e[0], e[1]))
    assert ex.passes == {"single_removal": 42}
    assert ex.score == pytest.approx(float(e[0] @ e[1]), abs=1e-6)
    assert np.array_equal(a, a0) and np.array_equal(b, b0)


def test_single_removal_finds_the_only_informative_window() -> None:
    """An embedder that only looks at one patch: S- must put its maximum on that patch."""
    rng = np.random.default_rng(0)
    proj = rng.normal(size=(16 * 16 * 3, 128)).astype(np.float32)

    def patch_embed(batch: np.ndarray) -> np.ndarray:
        x = np.asarray(batch, np.float32)[:, 60:76, 20:36].reshape(len(batch), -1) / 255.0
        e = x @ proj + 1e-3
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    a = rng.uniform(0, 255, (112, 112, 3)).astype(np.uint8)
    ex = explain_pair(a, a.copy(), patch_embed, threshold=0.5, methods=["single_removal"], grid=7)
    y, x = np.unravel_index(np.argmax(ex.maps["a"]["single_removal"]), (112, 112))
    assert 52 <= y <= 84 and 12 <= x <= 44


def test_windows_and_fills() -> None:
    w = gaussian_windows(5, 11.2, corners=True)
    assert w.shape == (25, 112, 112) and w.max() <= 1.0
    assert np.isclose(w[12, 56, 56], 1.0, atol=0.01)  # the centre window peaks at the crop centre
    centers = window_centers(5)
    assert len(centers) == 21 and len(gaussian_windows(5, 11.2)) == 21
    assert not any((x < 20 or x > 92) and (y < 20 or y > 92) for x, y in centers)
    crop = np.random.default_rng(0).uniform(0, 255, (112, 112, 3)).astype(np.float32)
    assert neutral_fill(crop, "mean").std(axis=(0, 1)).max() < 1e-3
    assert neutral_fill(crop, "blur").std() < crop.std() / 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"methods": ["nope"]},
        {"methods": []},
        {"fill": "zero"},
        {"grid": 1},
        {"greedy_steps": -1},
        {"greedy": "fast"},
        {"block": 0},
        {"first_block": 0},
        {"sigma": 0.0},
    ],
)
def test_bad_parameters_are_typed_errors(kwargs: dict) -> None:
    a, b = _toy_pair()
    with pytest.raises(InvalidRequest):
        explain_pair(a, b, ToyEmbedder(), threshold=0.5, **kwargs)


def test_bad_crop_is_a_typed_error() -> None:
    a, _ = _toy_pair()
    with pytest.raises(InvalidRequest):
        explain_pair(a, np.zeros((100, 112, 3), np.uint8), ToyEmbedder(), threshold=0.5)


# -- real model on LFW ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def matched_crops(engine, matched_pair_bytes):  # type: ignore[no-untyped-def]
    timings: dict[str, float] = {}
    fa = engine.prepare(matched_pair_bytes[0], "a", timings)
    fb = engine.prepare(matched_pair_bytes[1], "b", timings)
    return fa.crop, fb.crop


def test_real_model_fast_equals_reference(engine, matched_crops) -> None:  # type: ignore[no-untyped-def]
    a, b = matched_crops
    embed = engine.recognizer.embed
    thr = engine.calibration.threshold
    fast = explain_pair(a, b, embed, thr, grid=3, greedy_steps=3, greedy="full")
    ref = reference_explain(a, b, embed, thr, grid=3, greedy_steps=3)
    for image in ("a", "b"):
        assert _orders(fast, image) == ref["orders"][image]
        for m in METHODS:
            assert np.abs(fast.maps[image][m] - ref["maps"][image][m]).max() <= 1e-3, (image, m)


@pytest.mark.parametrize("method", ["single_removal", "average"])
def test_removing_top_region_drops_score_more_than_bottom(engine, matched_crops, method: str) -> None:  # type: ignore[no-untyped-def]
    a, b = matched_crops
    embed = engine.recognizer.embed
    ex = explain_pair(a, b, embed, engine.calibration.threshold, methods=[method])
    assert ex.score >= engine.calibration.threshold  # a matched pair the recogniser accepts
    rows = [r for r in explainability_table(ex.maps) if r["image"] == "a"]
    top = next(r["region"] for r in rows if r["rank"] == 1)
    bottom = next(r["region"] for r in rows if r["rank"] == len(REGIONS))
    labels = region_labels()
    fill = neutral_fill(a, "blur")
    target = embed(b[None])[0]

    def without(region: str) -> float:
        mask = (labels == REGIONS.index(region) + 1)[..., None]
        return float(embed(np.where(mask, fill, a.astype(np.float32))[None])[0] @ target)

    assert ex.score - without(top) > ex.score - without(bottom)

