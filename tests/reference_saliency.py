"""Plain reference for edgefx.explain.saliency: one forward pass per masked image, Python loops, full greedy.

Used only by the tests and `edgefx bench explain` to prove the vectorised maps are the same maps and
to measure the speed-up. It shares the definitions (windows, fill, map from credits) with the fast
module, not the algorithm.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgefx.explain.windows import composite, default_sigma, gaussian_windows, neutral_fill, normalize, windows_to_map

Embed = Callable[[np.ndarray], np.ndarray]


def _score(embed: Embed, image: np.ndarray, target: np.ndarray) -> float:
    return float(np.asarray(embed(image[None].astype(np.float32)))[0] @ target)


def _blend(base: np.ndarray, other: np.ndarray, taken: list[int], windows: np.ndarray) -> np.ndarray:
    """Windows in `taken` move the image from `base` towards `other` (the shared blend, so the pixels are the same
    bits as the fast module's: an int8 model's score moves by up to 0.008 on a 3e-5 change of the pixels)."""
    keep = np.ones(base.shape[:2], np.float32)
    for k in taken:
        keep = keep * (1.0 - windows[k])
    return composite(base, other, keep[None])[0]


def _greedy(embed: Embed, base: np.ndarray, other: np.ndarray, target: np.ndarray, windows: np.ndarray,
            start: float, reveal: bool, done: Callable[[float], bool], steps: int) -> tuple[list[int], list[float]]:
    taken: list[int] = []
    credits: list[float] = []
    current = start
    for _ in range(steps):
        if done(current) or len(taken) == len(windows):
            break
        best_k, best_gain, best_score = -1, -np.inf, 0.0
        for k in range(len(windows)):
            if k in taken:
                continue
            s = _score(embed, _blend(base, other, taken + [k], windows), target)
            gain = s - current if reveal else current - s
            if gain > best_gain:
                best_k, best_gain, best_score = k, gain, s
        taken.append(best_k)
        credits.append(best_gain)
        current = best_score
    return taken, credits


def reference_explain(crop_a: np.ndarray, crop_b: np.ndarray, embed: Embed, threshold: float, grid: int = 5,
                      sigma: float | None = None, fill: str = "blur", greedy_steps: int = 8,
                      corners: bool = False) -> dict:
    """{'score', 'maps': {image: {method: map}}, 'orders': {image: {greedy method: [window, ...]}}}."""
    sigma = default_sigma(grid) if sigma is None else sigma
    windows = gaussian_windows(grid, sigma, corners)
    crops = [np.asarray(crop_a, np.float32), np.asarray(crop_b, np.float32)]
    embs = [np.asarray(embed(c[None]))[0] for c in crops]
    score = float(embs[0] @ embs[1])
    out: dict = {"score": score, "maps": {}, "orders": {}}
    for i, image in enumerate(("a", "b")):
        crop, target = crops[i], embs[1 - i]
        fill_img = neutral_fill(crop, fill)
        drops = np.array([score - _score(embed, _blend(crop, fill_img, [k], windows), target)
                          for k in range(len(windows))])
        canvas = _score(embed, fill_img, target)
        reveals = np.array([_score(embed, _blend(fill_img, crop, [k], windows), target) - canvas
                            for k in range(len(windows))])
        removal_stops = score >= threshold
        g_minus = _greedy(embed, crop, fill_img, target, windows, score, False,
                          lambda s: removal_stops and s < threshold, greedy_steps)
        g_plus = _greedy(embed, fill_img, crop, target, windows, canvas, True, lambda s: s >= score, greedy_steps)
        maps = {"single_removal": normalize(windows_to_map(drops, windows)),
                "single_aggregation": normalize(windows_to_map(reveals, windows))}
        for name, (order, credits) in (("greedy_removal", g_minus), ("greedy_aggregation", g_plus)):
            w = np.zeros(len(windows), np.float32)
            w[order] = credits
            maps[name] = normalize(windows_to_map(w, windows))
        maps["average"] = normalize(np.mean([maps[m] for m in ("single_removal", "greedy_removal",
                                                                 "single_aggregation", "greedy_aggregation")], axis=0))
        out["maps"][image] = maps
        out["orders"][image] = {"greedy_removal": g_minus[0], "greedy_aggregation": g_plus[0]}
    return out
