"""`edgefx eval lfw-identify`: the open-set (1:N) protocol on LFW. Gallery = the first image of each person with two
or more images, mated probes = their other images, non-mated probes = the people with one image. Rank-1, FNIR at
FPIR 1e-2 and 1e-3 (NIST FRVT terms), the worst non-mated hits, and the open-set calibration fitted on the scores."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgefx.evaluation.lfw import lfw_image_root
from edgefx.evaluation.lfw_eval import AlignedImages, align_images
from edgefx.faces.loading import EMBEDDERS, recognizer_models
from edgefx.faces.mtcnn import MTCNN
from edgefx.faces.recognizer import Recognizer
from edgefx.faces.yunet import YuNet
from edgefx.gallery.openset import OpenSetCalibration

FPIR_TARGETS = (1e-2, 1e-3)


@dataclass
class Protocol:
    """Image paths and the index of each role: gallery (one per person), mated and non-mated probes."""

    paths: list[str]
    gallery: np.ndarray  # indexes into paths
    mated: np.ndarray
    mated_subject: np.ndarray  # the gallery row of each mated probe's person
    non_mated: np.ndarray

    @property
    def names(self) -> list[str]:
        return [p.split("/")[0] for p in self.paths]


def build_protocol(image_root: Path) -> Protocol:
    """People in name order; each person's images in file order (the first is `_0001`)."""
    paths: list[str] = []
    gallery, mated, mated_subject, non_mated = [], [], [], []
    for person in sorted(p for p in image_root.iterdir() if p.is_dir()):
        images = sorted(f"{person.name}/{f.name}" for f in person.iterdir() if f.suffix.lower() == ".jpg")
        if not images:
            continue
        start = len(paths)
        paths += images
        if len(images) == 1:
            non_mated.append(start)
            continue
        mated_subject += [len(gallery)] * (len(images) - 1)
        gallery.append(start)
        mated += range(start + 1, start + len(images))
    return Protocol(paths, np.array(gallery), np.array(mated), np.array(mated_subject), np.array(non_mated))


def load_crops(image_root: Path, protocol: Protocol, detector: MTCNN | YuNet, cache: Path | None) -> AlignedImages:
    """Every image detected and aligned once (shared by the recognizers); optionally cached in an .npz outside the
    repository (it holds face crops: never commit it)."""
    if cache is not None and cache.is_file():
        data = np.load(cache)
        if list(data["paths"]) == protocol.paths:
            return AlignedImages(protocol.paths, data["crops"], data["failed"])
    aligned = align_images(image_root, protocol.paths, detector, "aligning")
    if cache is not None:
        np.savez(cache, paths=np.array(protocol.paths), crops=aligned.crops, failed=aligned.failed)
    return aligned


def embed_all(crops: np.ndarray, recognizer: Recognizer, batch: int = 64) -> np.ndarray:
    return np.concatenate([recognizer.embed(crops[s:s + batch]) for s in range(0, len(crops), batch)])


def fused(parts: dict[str, np.ndarray], weight: float) -> np.ndarray:
    """The fusion's embedding from its parts' unit rows, as `faces.fusion.Fusion.embed` makes it: [sqrt(w) u,
    sqrt(1 - w) v], whose cosine is the weighted mean of the parts' cosines."""
    first, second = (parts[m] for m in recognizer_models("fusion"))
    return np.concatenate([first * np.sqrt(weight), second * np.sqrt(1.0 - weight)], axis=1).astype(np.float32)


def threshold_for_fpir(non_mated_best: np.ndarray, fpir: float) -> float:
    """The lowest threshold whose FPIR on these probes is <= fpir (at most floor(fpir * n) probes pass)."""
    ordered = np.sort(non_mated_best)[::-1]
    allowed = int(np.floor(fpir * len(ordered)))
    return float(np.nextafter(ordered[allowed], np.inf)) if allowed < len(ordered) else float(ordered[-1])


def fnir_at(threshold: float, own: np.ndarray, rank1: np.ndarray) -> float:
    """A mated probe is missed unless its own subject is ranked first and scores at least the threshold."""
    return float(np.mean(~(rank1 & (own >= threshold))))


def open_set_scores(protocol: Protocol, embeddings: np.ndarray) -> dict[str, np.ndarray]:
    gallery = embeddings[protocol.gallery]
    mated = embeddings[protocol.mated] @ gallery.T
    non_mated = embeddings[protocol.non_mated] @ gallery.T
    rows = np.arange(len(protocol.mated))
    own = mated[rows, protocol.mated_subject]
    rank1 = mated.argmax(axis=1) == protocol.mated_subject
    mated[rows, protocol.mated_subject] = np.nan  # the rest of a mated probe's row are impostor comparisons
    impostors = np.concatenate([non_mated.ravel(), mated[~np.isnan(mated)]])
    return {"own": own.astype(np.float64), "rank1": rank1, "non_mated_best": non_mated.max(axis=1).astype(np.float64),
            "non_mated_best_row": non_mated.argmax(axis=1), "impostors": impostors}


def report_scores(protocol: Protocol, scores: dict[str, np.ndarray], worst: int = 8) -> dict[str, Any]:
    names = protocol.names
    nm, own, rank1 = scores["non_mated_best"], scores["own"], scores["rank1"]
    out: dict[str, Any] = {"rank1": float(rank1.mean()), "fnir_at_fpir": {}, "threshold_at_fpir": {}}
    for fpir in FPIR_TARGETS:
        t = threshold_for_fpir(nm, fpir)
        out["threshold_at_fpir"][f"{fpir:g}"] = round(t, 6)
        out["fnir_at_fpir"][f"{fpir:g}"] = fnir_at(t, own, rank1)
        out.setdefault("fpir_measured", {})[f"{fpir:g}"] = float(np.mean(nm >= t))
    order = np.argsort(-nm)[:worst]
    out["worst_non_mated"] = [{"probe": protocol.paths[protocol.non_mated[i]],
                               "hit": names[protocol.gallery[scores["non_mated_best_row"][i]]],
                               "score": round(float(nm[i]), 4)} for i in order]
    return out


def scaled_check(calibration: OpenSetCalibration, scores: dict[str, np.ndarray], gallery_size: int) -> dict[str, Any]:
    """The run-time rule (threshold from the per-comparison table at this gallery size) against the measured rates."""
    out = {}
    for fpir in FPIR_TARGETS:
        t = calibration.threshold(fpir, gallery_size)
        out[f"{fpir:g}"] = {"threshold": round(t, 6), "fpir_measured": float(np.mean(scores["non_mated_best"] >= t)),
                            "fnir": fnir_at(t, scores["own"], scores["rank1"])}
    return out


def evaluate_identify(root: Path, detector: MTCNN | YuNet, recognizers: dict[tuple[str, str], Any],
                      detector_name: str, cache: Path | None = None,
                      fusion_weight: float = 0.5) -> tuple[list[dict[str, Any]], list[OpenSetCalibration]]:
    """One report and one fitted calibration per (recognizer, precision); `recognizers` maps (name, precision) to a
    loaded embedder for sface/arcface (fusion is built from those two with `fusion_weight` on the first)."""
    image_root = lfw_image_root(root)
    protocol = build_protocol(image_root)
    t0 = time.perf_counter()
    aligned = load_crops(image_root, protocol, detector, cache)
    align_s = time.perf_counter() - t0
    reports, calibrations = [], []
    parts: dict[tuple[str, str], np.ndarray] = {}
    for (name, precision), recognizer in recognizers.items():
        t1 = time.perf_counter()
        if name in EMBEDDERS:
            parts[(name, precision)] = embeddings = embed_all(aligned.crops, recognizer)
        else:
            embeddings = fused({m: parts[(m, precision)] for m in recognizer_models(name)}, fusion_weight)
        embed_s = time.perf_counter() - t1
        scores = open_set_scores(protocol, embeddings)
        meta = {"protocol": f"LFW open-set ({len(protocol.gallery)} subjects)", "gallery_size": len(protocol.gallery),
                "mated_probes": len(protocol.mated), "non_mated_probes": len(protocol.non_mated),
                **({"fusion_weight": fusion_weight} if name == "fusion" else {})}
        calibration = OpenSetCalibration.fit(name, precision, detector_name, scores["own"], scores["non_mated_best"],
                                             scores["impostors"], meta)
        report = {"recognizer": name, "precision": precision, "detector": detector_name, **meta,
                  "fta_images": int(aligned.failed.sum()), "align_seconds": round(align_s, 1),
                  "embed_seconds": round(embed_s, 1), **report_scores(protocol, scores),
                  "runtime_rule_at_this_gallery_size": scaled_check(calibration, scores, len(protocol.gallery))}
        calibration.meta.update(rank1=report["rank1"], fnir_at_fpir=report["fnir_at_fpir"],
                                threshold_at_fpir=report["threshold_at_fpir"])
        reports.append(report)
        calibrations.append(calibration)
    return reports, calibrations
