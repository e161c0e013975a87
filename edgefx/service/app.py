"""The app factory: the local HTTP API (`/v1`) and kiosk page, assembled from routers, with safe defaults."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from edgefx import __version__
from edgefx.runtime.config import Settings
from edgefx.service.error_handlers import install_error_handlers
from edgefx.service.explained import API_VERSION, explained_bytes
from edgefx.service.pool import InferencePool
from edgefx.service.routers import explanations, page, subjects, system, verify
from edgefx.service.security import BodyLimitMiddleware, SecurityHeadersMiddleware, resolve_token, token_guard
from edgefx.service.state import Services
from edgefx.service.store import ExplanationStore

MAX_QUEUE_WAIT_S = 60.0  # refuse work that would wait longer than this behind the jobs already accepted
EXPLANATION_BUDGET_BYTES = 128 * 1024 * 1024  # photos, maps and PNGs kept for explanations, all together


def create_app(
    engine: Any,
    settings: Settings,
    token: str | None = None,
    explanation_budget_bytes: int = EXPLANATION_BUDGET_BYTES,
) -> FastAPI:
    """The FastAPI app over a loaded `Engine`. `token` guards every /v1 route; None means the settings' token
    (EDGEFX_TOKEN / EDGEFX_TOKEN_FILE), "" means none."""
    token = token if token is not None else resolve_token(settings)
    store = ExplanationStore(settings.explanation_ttl_s, settings.explanation_cap, max_bytes=explanation_budget_bytes,
                             weigh=explained_bytes)
    pool = InferencePool(settings.workers, settings.queue_size,
                         float(getattr(settings, "max_queue_wait_s", MAX_QUEUE_WAIT_S)))

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.clear()
        pool.shutdown()

    # No Swagger page (it loads its script from a CDN); the schema is served from the token-guarded router.
    app = FastAPI(lifespan=lifespan, title="edgefx", version=__version__,
                  summary="Explainable face verification on the device: verify, explain, ask.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    app.state.settings = settings
    app.state.store = store
    app.state.pool = pool
    app.state.services = Services(engine, settings, store, pool, explanation_budget_bytes, bool(token))
    install_error_handlers(app)

    v1 = APIRouter(prefix=f"/{API_VERSION}", dependencies=[Depends(token_guard(token))])
    for module in (system, verify, explanations, subjects):
        v1.include_router(module.router)
    app.include_router(v1)
    app.include_router(page.router)

    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app
