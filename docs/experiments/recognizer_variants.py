"""Flip test-time augmentation and fitted score fusion per recognizer on LFW: fitted on DevTrain, checked elsewhere.

Evidence for issue 14's accuracy target, not part of the product. Every face is detected and aligned once by the
product's MTCNN (fp32, the product's face selection); each recognizer embeds each crop and its mirror image once
(raw, un-normalised, cached as .npy under --cache). The variants are then scores computed from those embeddings:
- `plain`: the crop's unit embedding (the product today); `flip`: the sum of the crop's and the mirror image's raw
  embeddings, normalised (exactly `OnnxEmbedder(flip_tta=True)`, checked on a few faces);
- fusions of SFace and ArcFace scores: the plain mean (the product's `fusion`), a weighted mean w*s_sface +
  (1-w)*s_arcface with w chosen on DevTrain only (lowest DevTrain EER; ties: higher DevTrain AUC), and z-normalised
  scores (each model's DevTrain impostor mean and std; their mean is again a weighted mean, w = sd_a / (sd_s + sd_a)).
Each variant gets its threshold on DevTrain (`best_accuracy_threshold`, as the product calibrates), then:
DevTest accuracy at that threshold, its oracle (best threshold on DevTest itself), EER, AUC; the all-impostors
protocol (the split's genuine pairs vs every pair of images of two different people) FNMR at FMR 1e-3/1e-4/1e-5;
and 6,000 further LFW pairs (seed 0: 3,000 genuine pairs not in View 1, an identity with >= 2 images drawn
uniformly then two of its images; 3,000 impostor pairs of two identities drawn uniformly, not in View 1).

    nice -n 10 env EDGEFX_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python docs/experiments/recognizer_variants.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from edgefx.evaluation.lfw import Pair, auc, eer, lfw_image_root, read_pairs, accuracy_at
from edgefx.evaluation.lfw_eval import align_images
from edgefx.faces.decision import best_accuracy_threshold
from edgefx.faces.loading import load_detector, load_recognizer
from edgefx.faces.recognizer import OnnxEmbedder, l2_normalize
from edgefx.runtime.config import Settings, default_lfw_dir

SPLITS = ("DevTrain", "DevTest", "Random6000")
MODELS = ("sface", "arcface")
FMRS = (1e-3, 1e-4, 1e-5)


def random_pairs(lfw: Path, n: int = 3000, seed: int = 0) -> list[Pair]:
    """n genuine pairs not in View 1 and n impostor pairs not in View 1, drawn with numpy's default_rng(seed)."""
    counts = {}
    for line in (lfw / "lfw-names.txt").read_text().split("\n"):
        if line.strip():
            name, count = line.split()
            counts[name] = int(count)
    view1 = {frozenset((p.path_a, p.path_b)) for split in ("DevTrain", "DevTest")
             for p in read_pairs(lfw / f"pairs{split}.txt")}
    rng = np.random.default_rng(seed)
    names = sorted(counts)
    several = [name for name in names if counts[name] >= 2]
    seen: set[frozenset[str]] = set()
    genuine: list[Pair] = []
    impostor: list[Pair] = []
    while len(genuine) < n:
        name = several[rng.integers(len(several))]
        i, j = rng.choice(counts[name], size=2, replace=False) + 1
        _add(genuine, seen, view1, f"{name}/{name}_{i:04d}.jpg", f"{name}/{name}_{j:04d}.jpg", True)
    while len(impostor) < n:
        a, b = rng.choice(len(names), size=2, replace=False)
        na, nb = names[a], names[b]
        ia, ib = rng.integers(counts[na]) + 1, rng.integers(counts[nb]) + 1
        _add(impostor, seen, view1, f"{na}/{na}_{ia:04d}.jpg", f"{nb}/{nb}_{ib:04d}.jpg", False)
    return genuine + impostor


def _add(out: list[Pair], seen: set[frozenset[str]], view1: set[frozenset[str]], a: str, b: str, same: bool) -> None:
    key = frozenset((a, b))
    if key not in seen and key not in view1:
        seen.add(key)
        out.append(Pair(a, b, same, 0))


def write_pairs_file(pairs: list[Pair], path: Path) -> None:
    """View 1 format (header N, N genuine lines then N impostor lines): `edgefx eval lfw --pairs` reads it."""
    def line(p: Pair) -> str:
        na, ia = p.path_a.split("/")[0], int(p.path_a[-8:-4])
        nb, ib = p.path_b.split("/")[0], int(p.path_b[-8:-4])
        return f"{na}\t{ia}\t{ib}" if p.genuine else f"{na}\t{ia}\t{nb}\t{ib}"
    path.write_text(f"{len(pairs) // 2}\n" + "\n".join(line(p) for p in pairs) + "\n")


def raw_embeddings(embedder: OnnxEmbedder, crops: np.ndarray, batch: int = 32) -> np.ndarray:
    """The network's un-normalised output for each crop (what the seam sums before normalising under flip)."""
    out = []
    for start in range(0, len(crops), batch):
        nchw = np.ascontiguousarray(crops[start:start + batch].transpose(0, 3, 1, 2), dtype=np.float32)
        out.append(embedder.model.run({embedder.input_name: nchw})[0].reshape(len(nchw), -1))
    return np.concatenate(out)


def load_split(lfw: Path, split: str, cache: Path, settings: Settings) -> tuple[list[Pair], list[str], np.ndarray]:
    """(pairs, image paths, aligned crops), the crops cached."""
    if split == "Random6000":
        pairs_file = cache / "pairsRandom6000.txt"
        if not pairs_file.is_file():
            write_pairs_file(random_pairs(lfw), pairs_file)
    else:
        pairs_file = lfw / f"pairs{split}.txt"
    pairs = read_pairs(pairs_file)
    paths = sorted({p.path_a for p in pairs} | {p.path_b for p in pairs})
    crops_file = cache / f"crops_{split}.npy"
    if not crops_file.is_file():
        aligned = align_images(lfw_image_root(lfw), paths, load_detector(settings), label=split)
        np.save(crops_file, aligned.crops)
        np.save(cache / f"failed_{split}.npy", aligned.failed)
    return pairs, paths, np.load(crops_file)


def embeddings(split: str, crops: np.ndarray, cache: Path, settings: Settings, model: str) -> dict[str, np.ndarray]:
    """{'plain', 'flip'} unit embeddings of one model, from cached raw outputs of the crops and their mirrors."""
    files = {kind: cache / f"raw_{model}_{settings.precision}_{kind}_{split}.npy" for kind in ("crop", "mirror")}
    if not all(f.is_file() for f in files.values()):
        embedder = load_recognizer(Settings(**{**settings.__dict__, "recognizer": model}))
        assert isinstance(embedder, OnnxEmbedder)
        np.save(files["crop"], raw_embeddings(embedder, crops))
        np.save(files["mirror"], raw_embeddings(embedder, np.ascontiguousarray(crops[:, :, ::-1, :])))
        check = type(embedder)(embedder.model, flip_tta=True)
        mine = l2_normalize(np.load(files["crop"])[:4] + np.load(files["mirror"])[:4])
        assert np.allclose(check.embed(crops[:4]), mine, atol=1e-5), "flip differs from the seam's"
    crop, mirror = np.load(files["crop"]), np.load(files["mirror"])
    return {"plain": l2_normalize(crop), "flip": l2_normalize(crop + mirror)}


def low_fmr(genuine: np.ndarray, emb_sets: list[tuple[float, np.ndarray]], identity: np.ndarray) -> dict[str, float]:
    """FNMR at FMR 1e-3/1e-4/1e-5, genuine pairs vs every different-identity image pair, for the weighted score
    sum_k w_k * (E_k E_k^T): impostor scores kept as the top of each block of rows (enough for FMR 1e-3)."""
    n = len(identity)
    total = int(n * (n - 1) // 2 - sum(c * (c - 1) // 2 for c in np.unique(identity, return_counts=True)[1]))
    keep = int(np.ceil(max(FMRS) * total)) + 1
    tops: list[np.ndarray] = []
    for start in range(0, n, 512):
        rows = slice(start, min(start + 512, n))
        sims = sum(w * (e[rows] @ e.T) for w, e in emb_sets)
        cols = np.arange(n)[None, :]
        valid = (cols > np.arange(rows.start, rows.stop)[:, None]) & (identity[rows][:, None] != identity[None, :])
        block = sims[valid]
        tops.append(block if len(block) <= keep else np.partition(block, -keep)[-keep:])
    top = np.sort(np.concatenate(tops))[::-1][:keep]
    out = {}
    for fmr in FMRS:
        k = int(np.floor(fmr * total))  # at most k impostors may be accepted: the threshold sits above top[k]
        out[f"{fmr:g}"] = round(float(np.mean(genuine <= top[k])), 4)
    out["n_impostor"] = total
    return out


def pair_index(pairs: list[Pair], paths: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = {p: i for i, p in enumerate(paths)}
    a = np.array([index[p.path_a] for p in pairs])
    b = np.array([index[p.path_b] for p in pairs])
    return a, b, np.array([p.genuine for p in pairs], dtype=np.int64)


def variant_report(parts: list[tuple[float, str, str]], data: dict[str, Any]) -> dict[str, Any]:
    """Every figure of one variant: parts are (weight, model, 'plain'|'flip'); its threshold fitted on DevTrain."""
    report: dict[str, Any] = {}
    threshold = 0.0
    for split in SPLITS:
        pairs, paths, emb = data[split]["pairs"], data[split]["paths"], data[split]["emb"]
        a, b, labels = pair_index(pairs, paths)
        sets = [(w, emb[model][kind]) for w, model, kind in parts]
        scores = sum(w * np.einsum("ij,ij->i", e[a], e[b]) for w, e in sets).astype(np.float64)
        if split == "DevTrain":
            threshold = best_accuracy_threshold(scores[labels == 1], scores[labels == 0])
        oracle = best_accuracy_threshold(scores[labels == 1], scores[labels == 0])
        identity = np.array([p.split("/")[0] for p in paths])
        report[split] = {"accuracy": round(accuracy_at(scores, labels, threshold), 4),
                         "oracle_accuracy": round(accuracy_at(scores, labels, oracle), 4),
                         "eer": round(eer(scores, labels), 4), "auc": round(auc(scores, labels), 5),
                         "fnmr_all_impostors": low_fmr(scores[labels == 1], sets, identity)}
    report["threshold"] = round(threshold, 4)
    return report


def fitted_weight(data: dict[str, Any], kind_s: str, kind_a: str) -> tuple[float, float]:
    """(w by lowest DevTrain EER, ties by AUC; w of the z-normalised mean) for w*s_sface + (1-w)*s_arcface."""
    d = data["DevTrain"]
    a, b, labels = pair_index(d["pairs"], d["paths"])
    s_s = np.einsum("ij,ij->i", d["emb"]["sface"][kind_s][a], d["emb"]["sface"][kind_s][b]).astype(np.float64)
    s_a = np.einsum("ij,ij->i", d["emb"]["arcface"][kind_a][a], d["emb"]["arcface"][kind_a][b]).astype(np.float64)
    grid = np.round(np.arange(0.0, 1.0001, 0.05), 2)
    scored = [(eer(w * s_s + (1 - w) * s_a, labels), -auc(w * s_s + (1 - w) * s_a, labels), float(w)) for w in grid]
    best = min(scored)[2]
    sd_s, sd_a = s_s[labels == 0].std(), s_a[labels == 0].std()
    return best, float(sd_a / (sd_s + sd_a))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lfw", type=Path, default=default_lfw_dir())
    parser.add_argument("--cache", type=Path, default=Path("/tmp/edgefx_issue14"))
    parser.add_argument("--precision", default="fp32", choices=["fp32", "int8"])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    settings = Settings.from_env(precision=args.precision)
    data: dict[str, Any] = {}
    for split in SPLITS:
        pairs, paths, crops = load_split(args.lfw, split, args.cache, settings)
        emb = {model: embeddings(split, crops, args.cache, settings, model) for model in MODELS}
        data[split] = {"pairs": pairs, "paths": paths, "emb": emb}
    variants: dict[str, list[tuple[float, str, str]]] = {}
    for model in MODELS:
        for kind in ("plain", "flip"):
            variants[f"{model} {kind}"] = [(1.0, model, kind)]
    for kind in ("plain", "flip"):
        w_eer, w_z = fitted_weight(data, kind, kind)
        for label, w in (("mean", 0.5), (f"weighted w={w_eer:.2f}", w_eer), (f"z-norm w={w_z:.3f}", w_z)):
            variants[f"fusion {kind} {label}"] = [(w, "sface", kind), (1 - w, "arcface", kind)]
    results = {name: variant_report(parts, data) for name, parts in variants.items()}
    text = json.dumps({"precision": args.precision, "results": results}, indent=1)
    if args.json:
        args.json.write_text(text)
    for name, r in results.items():
        tr, te, rn = r["DevTrain"], r["DevTest"], r["Random6000"]
        print(f"{name:32s} thr {r['threshold']:.4f} | DevTrain {tr['accuracy']:.4f} eer {tr['eer']:.4f} "
              f"auc {tr['auc']:.5f} fnmr1e-4 {tr['fnmr_all_impostors']['0.0001']:.4f} | DevTest {te['accuracy']:.4f} "
              f"(oracle {te['oracle_accuracy']:.4f}) eer {te['eer']:.4f} auc {te['auc']:.5f} fnmr "
              f"{te['fnmr_all_impostors']['0.001']:.4f}/{te['fnmr_all_impostors']['0.0001']:.4f}/"
              f"{te['fnmr_all_impostors']['1e-05']:.4f} | Rand {rn['accuracy']:.4f} eer {rn['eer']:.4f} "
              f"auc {rn['auc']:.5f} fnmr {rn['fnmr_all_impostors']['0.001']:.4f}/"
              f"{rn['fnmr_all_impostors']['0.0001']:.4f}/{rn['fnmr_all_impostors']['1e-05']:.4f}")


if __name__ == "__main__":
    main()
