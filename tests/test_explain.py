"""Explaining a verification embeds every masked image with the very model that verified the pair."""

from __future__ import annotations

import numpy as np
import pytest


def test_explanation_embeds_with_the_verifying_model(engine, matched_pair_bytes, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Whatever the precision (fp32 or int8) and backend the engine verifies with, the masked variants go through the
    # same recognizer object: wrap it and count what it embeds.
    seen: list[int] = []
    verify_embed = engine.recognizer.embed

    def counting(batch: np.ndarray) -> np.ndarray:
        seen.append(len(batch))
        return verify_embed(batch)

    monkeypatch.setattr(engine.recognizer, "embed", counting)
    plain = engine.verify(*matched_pair_bytes)
    verify_images = sum(seen)
    explained = engine.verify(*matched_pair_bytes, explain=True, methods=["single_removal", "single_aggregation"])
    passes = explained.explanation.pair.passes
    assert verify_images == 2
    # the pair's own embeddings are reused: the explanation adds exactly its counted passes (the single maps and the
    # ten regions of each face removed, R-), in one batch
    counted = passes["single_removal"] + passes["single_aggregation"] + passes["region_removal"]
    assert passes["region_removal"] == 2 * 10
    assert sum(seen) - 2 * verify_images == counted
    assert seen[-1] == counted
    table = explained.explanation.table
    assert {r["method"] for r in table} == {"single_removal", "single_aggregation", "region_removal"}
    drops = {(r["image"], r["region"]): r["drop"] for r in table if r["method"] == "region_removal"}
    assert len(drops) == 20 and explained.explanation.region_check.keys() == {"a", "b"}
    assert explained.score == pytest.approx(plain.score, abs=1e-7) and explained.match == plain.match
