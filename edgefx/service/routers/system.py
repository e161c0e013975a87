"""Liveness, readiness, and what the device runs (`/v1/health`, `/v1/ready`, `/v1/info`, `/v1/openapi.json`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from edgefx import __version__
from edgefx.qa.answerer import MAX_QUESTION_CHARS
from edgefx.service.explained import API_VERSION
from edgefx.service.state import Services, services

router = APIRouter()


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> dict[str, Any]:
    return request.app.openapi()  # type: ignore[no-any-return]


@router.get("/health", summary="Liveness: the process answers")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: every model is loaded")
async def ready(s: Services = Depends(services)) -> JSONResponse:
    if not getattr(s.engine, "ready", False):
        return JSONResponse(
            {"error": {"code": "not_ready", "message": "models are still loading"}},
            status_code=503,
            headers={"Retry-After": "1"},
        )
    return JSONResponse({"ready": True})


@router.get("/info", summary="Models, hashes, backend, device, thresholds and service limits")
async def info(s: Services = Depends(services)) -> dict[str, Any]:
    settings = s.settings
    return {
        **s.engine.info(),
        "service": {
            "api": API_VERSION,
            "version": __version__,
            "max_body_bytes": settings.max_body_bytes,
            "max_pixels": settings.max_pixels,
            "workers": settings.workers,
            "queue_size": settings.queue_size,
            "max_queue_wait_s": s.pool.max_wait_s,
            "explanation_ttl_s": settings.explanation_ttl_s,
            "explanation_cap": settings.explanation_cap,
            "max_question_chars": MAX_QUESTION_CHARS,
            "explanation_budget_bytes": s.explanation_budget_bytes,
            "explanations_stored": len(s.store),
            "explanation_bytes_stored": s.store.bytes,
            "token_required": s.token_required,
        },
    }
