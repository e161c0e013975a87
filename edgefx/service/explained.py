"""One explained verification as the service keeps it: its result, its JSON, its QA context and its links."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgefx.qa.context import build_facts
from edgefx.qa.facts import Fact
from edgefx.service.memory import give_back_memory

API_VERSION = "v1"
IMAGES = ("a", "b")


@dataclass
class Explained:
    """What the store keeps for one explained verification: the engine's result and its JSON."""

    result: Any
    body: dict[str, Any]
    facts: list[Fact] | None = None


def explained_bytes(explained: Explained) -> int:
    """Approximate RAM held by one stored explanation: decoded photos, crops, maps and rendered PNGs."""
    result = explained.result
    explanation = getattr(result, "explanation", None)
    reported = getattr(explanation, "nbytes", None)
    if isinstance(reported, int):
        return reported
    total = 0
    for face in getattr(result, "faces", None) or ():
        total += sum(getattr(getattr(face, name, None), "nbytes", 0) for name in ("photo", "crop"))
    maps = getattr(getattr(explanation, "pair", None), "maps", None) or {}
    for per_image in maps.values():
        total += sum(getattr(m, "nbytes", 0) for m in per_image.values())
    pngs = getattr(explanation, "_png", None)
    if isinstance(pngs, dict):
        total += sum(len(png) for png in pngs.values())
    return total


def explanation_facts(explained: Explained) -> list[Fact]:
    """The QA facts of an explained result, built once from its JSON."""
    if explained.facts is None:
        explained.facts = build_facts(explained.body)
    return explained.facts


def link_images(explanation: dict[str, Any], explanation_id: str) -> None:
    """Point the explanation's heatmaps and summary at this server's PNG routes."""
    base = f"/{API_VERSION}/explanations/{explanation_id}"
    methods = explanation.get("methods", [])
    explanation["heatmaps"] = {
        image: {method: f"{base}/heatmaps/{image}/{method}.png" for method in methods} for image in IMAGES
    }
    explanation["summary"] = f"{base}/summary.png"


def verify_call(engine: Any, image_a: bytes, image_b: bytes, explain: bool, methods: list[str] | None) -> Callable[[], Any]:
    def call() -> Any:
        if explain:
            try:
                return engine.verify(image_a, image_b, explain=True, methods=methods)
            finally:
                give_back_memory(engine)
        return engine.verify(image_a, image_b)

    return call
