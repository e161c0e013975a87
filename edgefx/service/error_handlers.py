"""Every failure as a JSON error with a stable code: typed errors, HTTP errors, validation errors, surprises."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from edgefx.runtime.errors import Busy, EdgefxError, InvalidRequest, Unauthorized

log = logging.getLogger("edgefx.service")


def error_response(error: EdgefxError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(error, Busy):
        headers["Retry-After"] = str(max(1, int(round(error.retry_after))))
    if isinstance(error, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="edgefx"'
    return JSONResponse(error.to_dict(), status_code=error.status, headers=headers)


_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def install_error_handlers(app: FastAPI) -> None:
    """Registers the handlers that turn every exception into `{"error": {"code", "message"}}`."""

    @app.exception_handler(EdgefxError)
    async def _edgefx_error(_: Request, exc: EdgefxError) -> JSONResponse:
        if exc.status >= 500 and not isinstance(exc, Busy):
            # Server-side faults name files and models: the details go to the log, not to the client.
            log.error("%s: %s", exc.code, exc.message)
            return JSONResponse(
                {"error": {"code": exc.code, "message": "the service cannot answer this now; see its log"}},
                status_code=exc.status,
            )
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404:
            message = "no such route"
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in exc.errors()
        )
        return error_response(InvalidRequest(problems or "invalid request"))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # The type only: messages from deep inside a model runtime could quote input data.
        log.exception("unexpected %s", type(exc).__name__)
        return JSONResponse(
            {"error": {"code": "internal_error", "message": "internal error; see the service log"}},
            status_code=500,
        )
