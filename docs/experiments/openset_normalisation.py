"""Open-set decision statistics on LFW (1:N): raw top-1 cosine vs cohort / Z / T / AS-norm, parameters chosen on one half of
the people and measured on the other, then on the full protocol and on small galleries (docs/experiments/openset_normalisation.md).

Input: an .npz with the protocol indexes and the unit embeddings, built once with `--build OUT.npz --crops-cache C.npz`
(the aligned crops of `edgefx eval lfw-identify --crops-cache`, made here if absent; SFace and ArcFace fp32, 1 thread,
plus SFace's pre-normalisation feature norms for the quality term). Every statistic uses only the enrolled templates
and the probe."""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from typing import Callable

import numpy as np

FPIRS = (1e-2, 1e-3)


@dataclass
class Split:
    """One open-set protocol: gallery rows (one per subject), mated probes with their gallery column, non-mated probes."""

    gallery: np.ndarray  # (G, D)
    log_norm_m: np.ndarray | None  # the probes' centred log feature norms (quality), when measured
    log_norm_n: np.ndarray | None
    mated: np.ndarray  # (M, D)
    mated_col: np.ndarray  # (M,)
    non_mated: np.ndarray  # (K, D)


def template_stats(gallery: np.ndarray, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Each enrolled template's impostor mean / std against the other enrolled templates (top-k of them when k)."""
    s = gallery @ gallery.T
    np.fill_diagonal(s, np.nan)
    if k is not None:
        s = -np.sort(-np.nan_to_num(s, nan=-np.inf), axis=1)[:, :k]
    return np.nanmean(s, axis=1), np.nanstd(s, axis=1) + 1e-6


def probe_rows(scores: np.ndarray) -> dict[str, np.ndarray]:
    """Per probe: the raw ranking (top column), s1 and the descending rest (the cohort: every other subject)."""
    order = np.argsort(-scores, axis=1)
    ranked = np.take_along_axis(scores, order, axis=1)
    return {"top": order[:, 0], "ranked": ranked}


STAT_GRID: dict[str, list[dict[str, float]]] = {
    "raw": [{}],
    "second": [{"beta": b} for b in np.round(np.arange(0.1, 1.01, 0.1), 2)],
    "cohort": [{"beta": b, "k": k} for b in np.round(np.arange(0.1, 1.01, 0.1), 2) for k in (2, 3, 5, 10, 20, 50)],
    "znorm": [{}],
    "znorm_topk": [{"k": k} for k in (10, 20, 50, 100, 200)],
    "mix_z": [{"weight": w} for w in (0.005, 0.01, 0.02, 0.03, 0.05, 0.08)],
    "tnorm": [{}],
    "asnorm": [{"k": k} for k in (10, 20, 50, 100, 200)],
    "linear": [{}],  # logistic regression on cohort features, weights fitted on the choice half (see `fit_linear`)
    "linear_q": [{}],  # the same with the quality term as a seventh feature (needs --norms)
    "quality": [{"gamma": g} for g in (-0.2, -0.1, -0.05, -0.02, 0.02, 0.05, 0.1, 0.2)],  # needs --norms
}


def features(rows: dict[str, np.ndarray], quality: bool = False) -> np.ndarray:
    """s1, s2, mean of s2..s11, mean and std of every other subject's score, a constant (and the log feature norm)."""
    r = rows["ranked"]
    rest = r[:, 1:]
    cols = [r[:, 0], rest[:, 0], rest[:, :10].mean(axis=1), rest.mean(axis=1), rest.std(axis=1), np.ones(len(r))]
    return np.stack(cols + ([rows["log_norm"]] if quality else []), axis=1)


def fit_linear(rows_m: dict, rank1: np.ndarray, rows_n: dict, quality: bool = False, l2: float = 1e-3,
               steps: int = 50) -> np.ndarray:
    """Logistic regression (Newton steps), rank-1-correct mated probes = 1 vs non-mated probes = 0, classes weighted
    equally; the statistic is the linear score."""
    x = np.concatenate([features(rows_m, quality)[rank1], features(rows_n, quality)])
    y = np.concatenate([np.ones(int(rank1.sum())), np.zeros(len(rows_n["ranked"]))])
    sw = np.where(y == 1, 0.5 / y.sum(), 0.5 / (len(y) - y.sum()))
    w = np.zeros(x.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (sw * (p - y)) + l2 * w
        hess = (x * (sw * p * (1 - p))[:, None]).T @ x + l2 * np.eye(len(w))
        w -= np.linalg.solve(hess, grad)
    return w


def statistic(name: str, p: dict[str, float], rows: dict[str, np.ndarray], tstats: dict) -> np.ndarray:
    """The decision statistic of each probe's top-1 (raw ranking kept: rank-1 is that of the raw cosine)."""
    r = rows["ranked"]
    s1, rest = r[:, 0], r[:, 1:]
    if name == "raw":
        return s1
    if name == "second":
        return s1 - p["beta"] * rest[:, 0]
    if name == "cohort":
        return s1 - p["beta"] * rest[:, : int(p["k"])].mean(axis=1)
    if name == "znorm":
        return (s1 - rest.mean(axis=1)) / (rest.std(axis=1) + 1e-6)
    if name == "znorm_topk":
        c = rest[:, : int(p["k"])]
        return (s1 - c.mean(axis=1)) / (c.std(axis=1) + 1e-6)
    if name == "mix_z":  # raw cosine plus a small multiple of the Z-normalised score (scale ~ 1/sigma)
        return s1 + p["weight"] * (s1 - rest.mean(axis=1)) / (rest.std(axis=1) + 1e-6)
    if name == "tnorm":
        mu, sd = tstats[None]
        return (s1 - mu[rows["top"]]) / sd[rows["top"]]
    if name == "asnorm":
        k = int(p["k"])
        c = rest[:, :k]
        mu_t, sd_t = tstats[k]
        zt = (s1 - mu_t[rows["top"]]) / sd_t[rows["top"]]
        zp = (s1 - c.mean(axis=1)) / (c.std(axis=1) + 1e-6)
        return 0.5 * (zt + zp)
    if name in ("linear", "linear_q"):
        return features(rows, name == "linear_q") @ np.asarray(p["w"])
    if name == "quality":  # the probe's pre-normalisation feature norm (log, centred) as a quality term
        return s1 + p["gamma"] * rows["log_norm"]
    raise ValueError(name)


def measure(split: Split, name: str, p: dict[str, float], cache: dict | None = None) -> dict[str, float]:
    cache = cache if cache is not None else {}
    if "rows_m" not in cache:
        cache["rows_m"] = probe_rows(split.mated @ split.gallery.T)
        cache["rows_n"] = probe_rows(split.non_mated @ split.gallery.T)
        cache["rows_m"]["log_norm"], cache["rows_n"]["log_norm"] = split.log_norm_m, split.log_norm_n
        cache["t"] = {None: template_stats(split.gallery, None)}
    if name == "asnorm" and int(p["k"]) not in cache["t"]:
        cache["t"][int(p["k"])] = template_stats(split.gallery, min(int(p["k"]), len(split.gallery) - 1))
    rm, rn = cache["rows_m"], cache["rows_n"]
    rank1 = rm["top"] == split.mated_col
    sm, sn = statistic(name, p, rm, cache["t"]), statistic(name, p, rn, cache["t"])
    out = {"rank1": float(rank1.mean())}
    for fpir in FPIRS:
        ordered = np.sort(sn)[::-1]
        allowed = int(np.floor(fpir * len(ordered)))
        t = np.nextafter(ordered[allowed], np.inf)
        out[f"fnir@{fpir:g}"] = float(np.mean(~(rank1 & (sm >= t))))
    return out


def paired_bootstrap(split: Split, name: str, p: dict, draws: int = 500, seed: int = 0) -> dict[str, float]:
    """FNIR(stat) - FNIR(raw) at each FPIR over probe resamples (mated and non-mated resampled with replacement, the
    same resample for both statistics): mean and 95 % interval, in percentage points."""
    cache: dict = {}
    measure(split, name, p, cache)  # fills the cache (probe rows, template statistics)
    rank1 = cache["rows_m"]["top"] == split.mated_col
    pairs = [(statistic(n, q, cache["rows_m"], cache["t"]), statistic(n, q, cache["rows_n"], cache["t"]))
             for n, q in (("raw", {}), (name, p))]
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[float]] = {f"{f:g}": [] for f in FPIRS}
    for _ in range(draws):
        im = rng.integers(0, len(rank1), len(rank1))
        inn = rng.integers(0, len(pairs[0][1]), len(pairs[0][1]))
        for fpir in FPIRS:
            fnir = []
            for sm, sn in pairs:
                ordered = np.sort(sn[inn])[::-1]
                t = np.nextafter(ordered[int(np.floor(fpir * len(ordered)))], np.inf)
                fnir.append(np.mean(~(rank1[im] & (sm[im] >= t))))
            diffs[f"{fpir:g}"].append(100 * (fnir[1] - fnir[0]))
    return {f"{k}_pp": [round(float(np.mean(v)), 3), round(float(np.percentile(v, 2.5)), 3),
                        round(float(np.percentile(v, 97.5)), 3)] for k, v in diffs.items()}


def runtime_rule(data: dict, emb: np.ndarray, calibration: str, sizes: tuple[int, ...], draws: int,
                 seed: int = 5) -> dict[str, dict[str, float]]:
    """Today's run-time rule for the raw cosine (threshold from the tracked per-comparison table at the gallery's size,
    `OpenSetCalibration.threshold`) on random galleries of every size: measured FPIR and FNIR at target FPIR 1 %.
    In-sample: that table was fitted on these LFW comparisons."""
    from edgefx.gallery.openset import OpenSetCalibration
    cal = OpenSetCalibration.from_dict(json.load(open(calibration)))
    rng = np.random.default_rng(seed)
    out = {}
    for size in sizes:
        fpir, fnir = [], []
        t = cal.threshold(0.01, size)
        for _ in range(draws):
            split = build_split(data, emb, np.sort(rng.choice(len(data["gallery"]), size, replace=False)),
                                np.arange(len(data["non_mated"])))
            sm, sn = split.mated @ split.gallery.T, split.non_mated @ split.gallery.T
            rank1 = sm.argmax(axis=1) == split.mated_col
            fpir.append(np.mean(sn.max(axis=1) >= t))
            fnir.append(np.mean(~(rank1 & (sm[np.arange(len(sm)), split.mated_col] >= t))))
        out[str(size)] = {"threshold": round(t, 4), "fpir": float(np.mean(fpir)), "fnir": float(np.mean(fnir))}
    return out


def person_half(name: str, seed: str) -> int:
    return hashlib.sha256(f"{seed}:{name}".encode()).digest()[0] & 1


def build_split(data: dict, emb: np.ndarray, subjects: np.ndarray, non_mated: np.ndarray) -> Split:
    """The protocol restricted to these gallery subjects (indexes into data['gallery']) and non-mated probes."""
    col = -np.ones(len(data["gallery"]), np.int64)
    col[subjects] = np.arange(len(subjects))
    keep = col[data["mated_subject"]] >= 0
    q = data.get("log_norm")
    mated, nm = data["mated"][keep], data["non_mated"][non_mated]
    return Split(emb[data["gallery"][subjects]], None if q is None else q[mated], None if q is None else q[nm],
                 emb[mated], col[data["mated_subject"][keep]], emb[nm])


def choose(split: Split, at: str = "fnir@0.01") -> dict[str, tuple[dict, dict]]:
    """Per statistic, the parameters with the lowest FNIR at FPIR 1 % on this split."""
    cache: dict = {}
    best = {}
    for name, grid in STAT_GRID.items():
        if name in ("quality", "linear_q") and split.log_norm_m is None:
            continue
        if name in ("linear", "linear_q"):
            measure(split, "raw", {}, cache)
            grid = [{"w": [round(float(v), 5) for v in fit_linear(cache["rows_m"], cache["rows_m"]["top"] ==
                                                                  split.mated_col, cache["rows_n"],
                                                                  name == "linear_q")]}]
        results = [(p, measure(split, name, p, cache)) for p in grid]
        best[name] = min(results, key=lambda pr: (pr[1][at], pr[1]["fnir@0.001"]))
    return best


def small_galleries(data: dict, emb: np.ndarray, pool: np.ndarray, nm_pool: np.ndarray, size: int, draws: int,
                    chosen: dict[str, dict], seed: int) -> dict[str, dict[str, float]]:
    """Mean (and spread) of each chosen statistic's FNIR at FPIR 1 % / 0.1 % over random galleries of `size` subjects
    (threshold set on each draw's own non-mated probes: the separability, not the run-time calibration)."""
    rng = np.random.default_rng(seed)
    per: dict[str, list[dict[str, float]]] = {n: [] for n in chosen}
    for _ in range(draws):
        split = build_split(data, emb, np.sort(rng.choice(pool, size, replace=False)), nm_pool)
        cache: dict = {}
        for n, p in chosen.items():
            per[n].append(measure(split, n, p, cache))
    out = {}
    for n, runs in per.items():
        out[n] = {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}
        out[n]["fnir@0.01_sd"] = float(np.std([r["fnir@0.01"] for r in runs]))
        raw = np.array([r["fnir@0.01"] for r in per["raw"]]) if "raw" in per else None
        if raw is not None:
            mine = np.array([r["fnir@0.01"] for r in runs])
            out[n]["draws_worse_than_raw@0.01"] = int(np.sum(mine > raw + 1e-12))
            out[n]["draws_better_than_raw@0.01"] = int(np.sum(mine < raw - 1e-12))
    return out


def build(out: str, crops_cache: str, lfw: str) -> None:
    """The protocol, the aligned crops (cached) and every recognizer's fp32 embeddings, 1 thread (about 7 + 7 + 6 min
    on the machine of the .md)."""
    from pathlib import Path

    from edgefx.evaluation.lfw import lfw_image_root
    from edgefx.evaluation.lfw_identify import build_protocol, embed_all, load_crops
    from edgefx.faces.loading import load_detector, load_recognizer
    from edgefx.runtime.config import Settings

    root = lfw_image_root(Path(lfw))
    protocol = build_protocol(root)
    aligned = load_crops(root, protocol, load_detector(Settings.from_env(threads=1)), Path(crops_cache))
    data = dict(paths=np.array(protocol.paths), gallery=protocol.gallery, mated=protocol.mated,
                mated_subject=protocol.mated_subject, non_mated=protocol.non_mated, failed=aligned.failed)
    for name in ("sface", "arcface"):
        recognizer = load_recognizer(Settings.from_env(threads=1, recognizer=name, precision="fp32"))
        data[name] = embed_all(aligned.crops, recognizer)
        if name == "sface":  # the raw network output's norm: the unit rows above have lost it
            data["sface_norm"] = np.concatenate([np.linalg.norm(recognizer._raw(  # noqa: SLF001 (experiment only)
                aligned.crops[s:s + 64].astype(np.float32)), axis=1) for s in range(0, len(aligned.crops), 64)])
    np.savez(out, **data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", metavar="OUT", help="write the embeddings .npz (needs --crops-cache) and stop")
    ap.add_argument("--crops-cache", help="the aligned-crops .npz (face crops: keep it outside the repository)")
    ap.add_argument("--lfw", default="/work/shared/lfw")
    ap.add_argument("embeddings", nargs="?", help=".npz from the build step (gallery, mated, mated_subject, non_mated, paths, <rec>)")
    ap.add_argument("--recognizer", default="sface")
    ap.add_argument("--seed", default="edgefx-openset-1")
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--norms", help=".npy of the recognizer's pre-normalisation feature norms (quality term; default "
                    "the .npz's <recognizer>_norm when present)")
    ap.add_argument("--exclude-non-mated", default="", help="comma-separated people left out of the non-mated "
                    "probes for a sensitivity check (same person enrolled under another name)")
    ap.add_argument("--calibration", help="a tracked open-set calibration file: measure today's run-time rule on "
                    "random galleries of 10 .. 1680 subjects")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.build:
        build(args.build, args.crops_cache, args.lfw)
        return
    data = dict(np.load(args.embeddings))
    emb = data[args.recognizer].astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    if args.norms or f"{args.recognizer}_norm" in data:
        log_norm = np.log(np.load(args.norms) if args.norms else data[f"{args.recognizer}_norm"])
        data["log_norm"] = log_norm - np.median(log_norm)
    names = [str(p).split("/")[0] for p in data["paths"]]
    excluded = set(filter(None, args.exclude_non_mated.split(",")))
    data["non_mated"] = np.array([i for i in data["non_mated"] if names[i] not in excluded])
    g_half = np.array([person_half(names[i], args.seed) for i in data["gallery"]])
    n_half = np.array([person_half(names[i], args.seed) for i in data["non_mated"]])
    halves = {h: build_split(data, emb, np.flatnonzero(g_half == h), np.flatnonzero(n_half == h)) for h in (0, 1)}
    full = build_split(data, emb, np.arange(len(data["gallery"])), np.arange(len(data["non_mated"])))
    report: dict = {"recognizer": args.recognizer, "seed": args.seed,
                    "halves": {h: {"subjects": len(s.gallery), "mated": len(s.mated), "non_mated": len(s.non_mated)}
                               for h, s in halves.items()}}
    for src, dst in ((0, 1), (1, 0)):
        chosen = choose(halves[src])
        cache: dict = {}
        report[f"{'AB'[src]}->{'AB'[dst]}"] = {
            n: {"params": p, "on_choice_half": r, "held_out": measure(halves[dst], n, p, cache),
                **({"held_out_minus_raw": paired_bootstrap(halves[dst], n, p)} if n != "raw" else {})}
            for n, (p, r) in chosen.items()}
    full_choice = choose(full)  # for information only: the in-sample optimum on everything
    cache = {}
    report["full_in_sample_best"] = {n: {"params": p, **r} for n, (p, r) in full_choice.items()}
    report["full_with_half_params"] = {
        f"{'AB'[h]}-params": {n: {"params": v["params"], **measure(full, n, v["params"], cache)}
                              for n, v in report[f"{'AB'[h]}->{'AB'[1 - h]}"].items()} for h in (0, 1)}
    # Small galleries: subjects of one half with the parameters chosen on the other half.
    report["small"] = {}
    for src, dst in ((0, 1), (1, 0)):
        chosen = {n: v["params"] for n, v in report[f"{'AB'[src]}->{'AB'[dst]}"].items()}
        pool, nm = np.flatnonzero(g_half == dst), np.flatnonzero(n_half == dst)
        for size in (s for s in (10, 50, 200) if s <= len(pool)):
            report["small"][f"{'AB'[src]}-params on {'AB'[dst]}, {size} subjects"] = small_galleries(
                data, emb, pool, nm, size, args.draws, chosen, seed=size * 7 + dst)
    if args.calibration:
        report["runtime_rule_raw"] = runtime_rule(data, emb, args.calibration, (10, 50, 200, 840, 1680), args.draws)
    text = json.dumps(report, indent=1, default=str)
    if args.json:
        open(args.json, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
