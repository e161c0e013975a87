"""Glue from a verification to its explanation: saliency maps, the region table, and their PNGs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edgefx.faces.align import transform_points
from edgefx.runtime.errors import InvalidRequest, NotFound
from edgefx.explain.regions import (RANK_BY, REGION_METHOD, REGIONS, SIDES, agreement, explainability_table,
                                    region_check, region_labels, region_masks)
from edgefx.explain.render import overlay_on_photo, summary_figure, to_png_bytes
from edgefx.explain.saliency import LABELS, METHODS, PairExplanation, explain_pair
from edgefx.faces.result import VerifyResult


class Explanation:
    """The maps and table of one verified pair; renders heatmap PNGs on demand (and caches them)."""

    def __init__(self, result: VerifyResult, pair: PairExplanation, labels: dict[str, np.ndarray]) -> None:
        self.pair = pair
        self.faces = {f.label: f for f in result.faces}
        self.match, self.score, self.threshold, self.confidence = (result.match, result.score, result.threshold,
                                                                   result.confidence)
        self.labels = labels
        self.table = explainability_table(pair.maps, self.labels, pair.region_drops or None)
        self.agreement = agreement(self.table)
        self.region_check = region_check(self.table, pair.region_drops)
        self.heatmap_refs: dict[str, dict[str, str]] = {
            image: {m: f"heatmaps/{image}/{m}.png" for m in pair.methods} for image in self.faces}
        self.summary_ref = "summary.png"
        self._png: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    @property
    def methods(self) -> tuple[str, ...]:
        return self.pair.methods

    def heatmap_png(self, image: str, method: str) -> bytes:
        """The map of one method drawn on the original photo of image `a` or `b`."""
        if image not in self.faces:
            raise NotFound(f"no image {image!r} in this explanation (use 'a' or 'b')")
        if method not in self.pair.maps[image]:
            raise NotFound(f"no method {method!r} in this explanation (have {', '.join(self.methods)})")
        key = (image, method)
        with self._lock:
            if key not in self._png:
                face = self.faces[image]
                self._png[key] = to_png_bytes(overlay_on_photo(face.photo, self.pair.maps[image][method], face.matrix,
                                                               outlines=True, labels=self.labels[image]))
            return self._png[key]

    def summary_png(self) -> bytes:
        """Both aligned faces with every method's map, decision and score in the caption."""
        with self._lock:
            if ("summary", "") not in self._png:
                crops = {k: f.crop for k, f in self.faces.items()}
                fig = summary_figure(crops, self.pair.maps, self.score, self.threshold, self.match, self.confidence,
                                     methods=self.methods, labels=self.labels)
                self._png[("summary", "")] = to_png_bytes(fig)
            return self._png[("summary", "")]

    def write_pngs(self, folder: Path) -> None:
        """Writes every heatmap and the summary into `folder`; the refs become those file paths."""
        folder.mkdir(parents=True, exist_ok=True)
        for image in self.faces:
            for m in self.methods:
                path = folder / f"{image}_{m}.png"
                path.write_bytes(self.heatmap_png(image, m))
                self.heatmap_refs[image][m] = str(path)
        summary = folder / "summary.png"
        summary.write_bytes(self.summary_png())
        self.summary_ref = str(summary)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.pair.summary(),
            "regions": list(REGIONS),
            "sides": SIDES,
            "table": [{**row, "share": round(float(row["share"]), 2)} for row in self.table],  # type: ignore[arg-type]
            "rank_by": RANK_BY,
            "region_method": REGION_METHOD if self.pair.region_drops else None,
            "region_check": self.region_check,
            "agreement": self.agreement,
            "heatmaps": self.heatmap_refs,
            "summary": self.summary_ref,
        }


def explain_result(result: VerifyResult, embed: Callable[[np.ndarray], np.ndarray], threshold: float,
                   methods: list[str] | None = None) -> Explanation:
    """Saliency maps for both faces of a verified pair; never changes the verification result itself."""
    chosen = list(methods or METHODS)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise InvalidRequest(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)} "
                             f"({', '.join(LABELS[m] for m in METHODS)})")
    a, b = result.faces
    labels = {f.label: region_labels(transform_points(f.face.landmarks, f.matrix)) for f in result.faces}
    pair = explain_pair(a.crop, b.crop, embed, threshold, methods=chosen, embeddings=result.embeddings,
                        regions=[region_masks(labels[f.label]).astype(np.float32) for f in (a, b)])
    return Explanation(result, pair, labels)
