"""What every route shares, kept on `app.state.services` and handed to routes by FastAPI's dependency injection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request

from edgefx.runtime.config import Settings
from edgefx.runtime.errors import NotFound
from edgefx.service.pool import InferencePool
from edgefx.service.store import ExplanationStore, StoredExplanation


@dataclass
class Services:
    """The loaded Engine, the settings, the explanation store and the inference pool of one app."""

    engine: Any
    settings: Settings
    store: ExplanationStore
    pool: InferencePool
    explanation_budget_bytes: int
    token_required: bool

    def lookup(self, explanation_id: str) -> StoredExplanation:
        """A stored explanation, or NotFound (unknown or expired)."""
        entry = self.store.get(explanation_id)
        if entry is None:
            raise NotFound(f"no explanation {explanation_id!r} (unknown or expired after "
                           f"{self.settings.explanation_ttl_s:.0f} s)")
        return entry


def services(request: Request) -> Services:
    """FastAPI dependency: the app's shared Services."""
    return request.app.state.services  # type: ignore[no-any-return]
