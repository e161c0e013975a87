"""The local HTTP API (`/v1`) and kiosk page of edgefx, served by uvicorn; safe defaults for an unattended device."""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import hmac
import ipaddress
import json
import logging
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from edgefx.config import Settings
from edgefx.errors import (BodyTooLarge, Busy, EdgefxError, InvalidQuestion, InvalidRequest, NotFound, Unauthorized,
                           UnsupportedMediaType)
from edgefx.pool import InferencePool
from edgefx.qa import MAX_QUESTION_CHARS, validate_question
from edgefx.store import ExplanationStore, StoredExplanation
from edgefx.upload import read_two_images

log = logging.getLogger("edgefx.server")

API_VERSION = "v1"
IMAGES = ("a", "b")
MAX_QUEUE_WAIT_S = 60.0  # refuse work that would wait longer than this behind the jobs already accepted
EXPLANATION_BUDGET_BYTES = 128 * 1024 * 1024  # photos, maps and PNGs kept for explanations, all together
MIN_TOKEN_CHARS = 16
MAX_JSON_BYTES = 16 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class UnsafeBind(EdgefxError):
    """The service would listen beyond loopback without a token."""

    code = "unsafe_bind"
    status = 500


# ---------------------------------------------------------------------------------------------- safety


def resolve_token(settings: Settings) -> str | None:
    """The API token from `settings.token` or the first line of `settings.token_file`; None when neither is set."""
    token = settings.token
    if not token and settings.token_file:
        try:
            token = Path(settings.token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UnsafeBind(f"cannot read the token file {settings.token_file}: {exc.strerror}") from None
    if not token:
        return None
    if len(token) < MIN_TOKEN_CHARS:
        raise UnsafeBind(f"the token is too short ({len(token)} characters; at least {MIN_TOKEN_CHARS} are needed)")
    return token


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other host name may resolve to a reachable address


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen on a non-loopback address unless a token protects the API."""
    if not is_loopback(host) and not token:
        raise UnsafeBind(
            f"refusing to listen on {host!r} without a token: set EDGEFX_TOKEN or EDGEFX_TOKEN_FILE "
            "(or bind 127.0.0.1)"
        )


# ---------------------------------------------------------------------------------------------- ASGI middleware


def _json_bytes(error: EdgefxError) -> bytes:
    return json.dumps(error.to_dict()).encode()


DRAIN_FACTOR = 8  # an over-limit body is read and dropped up to 8x the limit, then the connection closes


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` while they stream in, before any handler buffers them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = BodyTooLarge(f"the request body is larger than the limit of {self.max_bytes} bytes")
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._drain(receive)
            await self._reject(send, too_large)
            return
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise too_large
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app answers after an overflow is replaced by the 413 below
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._drain(receive)
            await self._reject(send, too_large)

    async def _drain(self, receive: Receive) -> None:
        """Reads and drops what the client is still sending (up to a bound) before the 413.

        Closing a socket with unread bytes makes the kernel reset it, and a client still writing its
        upload then sees a dropped connection instead of the JSON error."""
        seen, cap = 0, DRAIN_FACTOR * self.max_bytes
        while seen < cap:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    @staticmethod
    async def _reject(send: Send, error: EdgefxError) -> None:
        body = _json_bytes(error)
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class SecurityHeadersMiddleware:
    """Adds headers that keep browsers from sniffing, framing or caching the API's answers."""

    PAGE_POLICY = (
        b"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        b"img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_api = scope.get("path", "").startswith(f"/{API_VERSION}/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                if is_api:  # answers hold faces and decisions: keep them out of any (disk) cache
                    headers.append((b"cache-control", b"no-store"))
                else:
                    headers.append((b"content-security-policy", self.PAGE_POLICY))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


# ---------------------------------------------------------------------------------------------- the app


@dataclass
class Explained:
    """What the store keeps for one explained verification: the engine's result and its JSON."""

    result: Any
    body: dict[str, Any]
    context: list[str] | None = None


def _explained_bytes(explained: Explained) -> int:
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


def _error_response(error: EdgefxError) -> JSONResponse:
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


def _answer_dict(answer: Any) -> dict[str, Any]:
    """The engine's Answer as JSON; the four documented keys are always present."""
    data = answer.to_dict() if hasattr(answer, "to_dict") else dataclasses.asdict(answer)
    for key in ("answer", "confidence", "evidence", "suggestions"):
        data.setdefault(key, None)
    return data


def _explanation_context(explained: Explained) -> list[str]:
    """The QA context sentences of an explained result, built once from its JSON."""
    if explained.context is None:
        from edgefx.context import build_context

        explained.context = build_context(explained.body)
    return explained.context


def create_app(
    engine: Any,
    settings: Settings,
    token: str | None = None,
    explanation_budget_bytes: int = EXPLANATION_BUDGET_BYTES,
) -> FastAPI:
    """The FastAPI app over a loaded `Engine`. `token` guards every /v1 route; None means the settings' token
    (EDGEFX_TOKEN / EDGEFX_TOKEN_FILE), "" means none."""
    token = token if token is not None else resolve_token(settings)
    store = ExplanationStore(
        settings.explanation_ttl_s,
        settings.explanation_cap,
        max_bytes=explanation_budget_bytes,
        weigh=_explained_bytes,
    )
    pool = InferencePool(
        settings.workers, settings.queue_size, float(getattr(settings, "max_queue_wait_s", MAX_QUEUE_WAIT_S))
    )
    token_bytes = token.encode() if token else None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        store.clear()
        pool.shutdown()

    app = FastAPI(
        lifespan=lifespan,
        title="edgefx",
        version=_version(),
        summary="Explainable face verification on the device: verify, explain, ask.",
        # Served from the token-guarded router below; no Swagger page, as it loads its script from a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    app.state.settings = settings
    app.state.store = store
    app.state.pool = pool

    @app.exception_handler(EdgefxError)
    async def _edgefx_error(_: Request, exc: EdgefxError) -> JSONResponse:
        if exc.status >= 500 and not isinstance(exc, Busy):
            # Server-side faults name files and models: the details go to the log, not to the client.
            log.error("%s: %s", exc.code, exc.message)
            return JSONResponse(
                {"error": {"code": exc.code, "message": "the service cannot answer this now; see its log"}},
                status_code=exc.status,
            )
        return _error_response(exc)

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
        return _error_response(InvalidRequest(problems or "invalid request"))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # The type only: messages from deep inside a model runtime could quote input data.
        log.exception("unexpected %s", type(exc).__name__)
        return JSONResponse(
            {"error": {"code": "internal_error", "message": "internal error; see the service log"}},
            status_code=500,
        )

    async def require_token(request: Request) -> None:
        if token_bytes is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized("this API needs a token: send 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(presented.strip().encode(), token_bytes):
            raise Unauthorized("wrong token")

    v1 = APIRouter(prefix=f"/{API_VERSION}", dependencies=[Depends(require_token)])

    def lookup(explanation_id: str) -> StoredExplanation:
        entry = store.get(explanation_id)
        if entry is None:
            raise NotFound(f"no explanation {explanation_id!r} (unknown or expired after {settings.explanation_ttl_s:.0f} s)")
        return entry

    @v1.get("/openapi.json", include_in_schema=False)
    async def openapi() -> dict[str, Any]:
        return app.openapi()

    @v1.get("/health", summary="Liveness: the process answers")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @v1.get("/ready", summary="Readiness: every model is loaded")
    async def ready() -> JSONResponse:
        if not getattr(engine, "ready", False):
            return JSONResponse(
                {"error": {"code": "not_ready", "message": "models are still loading"}},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        return JSONResponse({"ready": True})

    @v1.get("/info", summary="Models, hashes, backend, device, thresholds and service limits")
    async def info() -> dict[str, Any]:
        return {
            **engine.info(),
            "service": {
                "api": API_VERSION,
                "version": _version(),
                "max_body_bytes": settings.max_body_bytes,
                "max_pixels": settings.max_pixels,
                "workers": settings.workers,
                "queue_size": settings.queue_size,
                "max_queue_wait_s": pool.max_wait_s,
                "explanation_ttl_s": settings.explanation_ttl_s,
                "explanation_cap": settings.explanation_cap,
                "max_question_chars": MAX_QUESTION_CHARS,
                "explanation_budget_bytes": explanation_budget_bytes,
                "explanations_stored": len(store),
                "explanation_bytes_stored": store.bytes,
                "token_required": token_bytes is not None,
            },
        }

    @v1.post(
        "/verify",
        summary="Verify that two photos show the same person; optionally explain the decision",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["image_a", "image_b"],
                            "properties": {
                                "image_a": {"type": "string", "format": "binary"},
                                "image_b": {"type": "string", "format": "binary"},
                            },
                        }
                    }
                },
            }
        },
    )
    async def verify(request: Request, explain: bool = False, methods: str | None = None) -> JSONResponse:
        method_list = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
        image_a, image_b = await read_two_images(request.headers.get("content-type"), request.stream())
        kind = "explain" if explain else "verify"
        result = await pool.run(_verify_call(engine, image_a, image_b, explain, method_list), kind=kind)
        del image_a, image_b
        body = result.to_dict()
        if explain and body.get("explanation") is not None:
            entry = store.put(Explained(result, body))
            body["explanation_id"] = entry.id
            _link_images(body["explanation"], entry.id)
        return JSONResponse(body)

    @v1.get("/explanations/{explanation_id}", summary="An explanation: result, table and context sentences")
    async def explanation(explanation_id: str) -> dict[str, Any]:
        entry = lookup(explanation_id)
        explained: Explained = entry.result
        context = await pool.run(_explanation_context, explained)
        return {**explained.body, "context": context}

    @v1.get(
        "/explanations/{explanation_id}/heatmaps/{image}/{method}.png",
        summary="The heatmap of one method over one photo",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    async def heatmap(explanation_id: str, image: str, method: str) -> Response:
        entry = lookup(explanation_id)
        explained: Explained = entry.result
        methods = explained.body["explanation"].get("methods", [])
        if image not in IMAGES:
            raise NotFound(f"image must be 'a' or 'b', not {image!r}")
        if method not in methods:
            raise NotFound(f"method {method!r} is not in this explanation ({', '.join(methods)})")
        png = await pool.run(_then_trim_heap(lambda: explained.result.explanation.heatmap_png(image, method)))
        store.touch(entry)
        return Response(png, media_type="image/png")

    @v1.get(
        "/explanations/{explanation_id}/summary.png",
        summary="Both faces and every method's heatmap in one figure",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    async def summary(explanation_id: str) -> Response:
        entry = lookup(explanation_id)
        explained: Explained = entry.result
        png = await pool.run(_then_trim_heap(explained.result.explanation.summary_png))
        store.touch(entry)
        return Response(png, media_type="image/png")

    @v1.post(
        "/explanations/{explanation_id}/ask",
        summary="Ask a question about an explained decision",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["question"],
                            "properties": {"question": {"type": "string", "maxLength": MAX_QUESTION_CHARS}},
                        }
                    }
                },
            }
        },
    )
    async def ask(explanation_id: str, request: Request) -> dict[str, Any]:
        question = await _read_question(request)
        explained: Explained = lookup(explanation_id).result
        context = await pool.run(_explanation_context, explained)
        answer = await pool.run(engine.ask, context, question)
        return _answer_dict(answer)

    app.include_router(v1)

    page = _index_html()

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


def _verify_call(engine: Any, image_a: bytes, image_b: bytes, explain: bool, methods: list[str] | None) -> Callable[[], Any]:
    def call() -> Any:
        if explain:
            try:
                return engine.verify(image_a, image_b, explain=True, methods=methods)
            finally:
                give_back_memory(engine)
        return engine.verify(image_a, image_b)

    return call


def give_back_memory(engine: Any) -> None:
    """After a rare, large job (an explanation: ~100 MB of SFace batches and occlusion maps, measured by `edgefx
    bench serve`), free the model buffers sized for it and return the freed heap to the system, so that the
    service's resident memory goes back to its verification working set instead of keeping the peak."""
    release = getattr(engine, "release_memory", None)
    if release is not None:
        release()
    trim_heap()


def _then_trim_heap(render: Callable[[], bytes]) -> Callable[[], bytes]:
    """`render`, then trim_heap: a figure's drawing buffers (~10 MB for the summary) are not kept once its PNG is made."""

    def call() -> bytes:
        try:
            return render()
        finally:
            trim_heap()

    return call


def trim_heap() -> bool:
    """glibc's malloc_trim(0): give free heap pages back to the system; False when not glibc."""
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False


def _link_images(explanation: dict[str, Any], explanation_id: str) -> None:
    """Point the explanation's heatmaps and summary at this server's PNG routes."""
    base = f"/{API_VERSION}/explanations/{explanation_id}"
    methods = explanation.get("methods", [])
    explanation["heatmaps"] = {
        image: {method: f"{base}/heatmaps/{image}/{method}.png" for method in methods} for image in IMAGES
    }
    explanation["summary"] = f"{base}/summary.png"


async def _read_question(request: Request) -> str:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType('send the question as application/json: {"question": "..."}')
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise InvalidQuestion(f"the request is too long; a question has at most {MAX_QUESTION_CHARS} characters")
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest('the body is not valid JSON; send {"question": "..."}') from None
    question = payload.get("question") if isinstance(payload, dict) else None
    if not isinstance(question, str):
        raise InvalidRequest('send {"question": "..."} with the question as a string')
    return validate_question(question)


def _index_html() -> str:
    return resources.files("edgefx").joinpath("static/index.html").read_text(encoding="utf-8")


def _version() -> str:
    from edgefx import __version__

    return __version__


# ---------------------------------------------------------------------------------------------- running it


def sd_notify(state: str) -> bool:
    """Send `state` to systemd's notification socket (Type=notify, WatchdogSec); False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(state.encode())
        return True
    except OSError as exc:
        log.warning("sd_notify failed: %s", exc)
        return False


def _watchdog_interval_s() -> float | None:
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2e6  # ping twice per period, as sd_watchdog_enabled(3) recommends


def _uvicorn_server(app: FastAPI, settings: Settings) -> Any:
    import uvicorn

    class NotifyingServer(uvicorn.Server):
        """Tells systemd READY=1 once the socket listens, then pings the watchdog from the event loop."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.started:
                return
            sd_notify(f"READY=1\nSTATUS=serving on {settings.host}:{settings.port}")
            interval = _watchdog_interval_s()
            if interval:
                # A ping from the loop itself: if the loop hangs, systemd restarts the service.
                self._watchdog = asyncio.create_task(self._ping(interval))

        async def _ping(self, interval: float) -> None:
            while not self.should_exit:
                sd_notify("WATCHDOG=1")
                await asyncio.sleep(interval)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            sd_notify("STOPPING=1")
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level="info",
        access_log=False,  # request lines carry explanation ids, which are capabilities
        server_header=False,
        proxy_headers=False,
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        h11_max_incomplete_event_size=16 * 1024,
    )
    return NotifyingServer(config)


M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = 1) -> bool:
    """Have every thread allocate from the same glibc malloc arena; False when not applied.

    glibc gives each thread that allocates while others do its own arena, which keeps its freed memory: the
    server's request threads (event loop, inference worker, the engine's second-photo thread) each grew one of
    6-8 MB on their first requests (`edgefx bench serve`, /proc/PID/smaps), after the warm-up on the main
    thread had already sized the main heap. With one arena, requests reuse what the warm-up allocated. Must run
    before the threads start; a MALLOC_ARENA_MAX in the environment (the operator's choice) is left alone."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False  # not glibc
    return bool(mallopt(M_ARENA_MAX, arenas))


def serve(settings: Settings) -> None:
    """Load every model, then serve the API until SIGTERM/SIGINT. Refuses an unsafe bind before loading anything."""
    token = resolve_token(settings)
    check_bind(settings.host, token)
    limit_malloc_arenas()
    from edgefx.engine import Engine

    if not is_loopback(settings.host):
        log.warning("listening on %s: every /v1 route needs the token", settings.host)
    engine = Engine(settings)
    app = create_app(engine, settings, token=token)
    _uvicorn_server(app, settings).run()


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """`edgefx serve`: add it to the CLI's subparsers; the handler is `args.handler(args)`."""
    parser = subparsers.add_parser(
        "serve",
        help="serve the HTTP API and the kiosk page",
        description="Serve /v1 and the kiosk page. Binds 127.0.0.1 unless told otherwise; any other address "
        "needs a token (EDGEFX_TOKEN or --token-file).",
    )
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1, EDGEFX_HOST)")
    parser.add_argument("--port", type=int, default=None, help="TCP port (default 8080, EDGEFX_PORT)")
    parser.add_argument("--token-file", type=Path, default=None, help="file whose first line is the API token")
    parser.add_argument("--workers", type=int, default=None, help="inference threads (EDGEFX_WORKERS)")
    parser.add_argument("--queue-size", type=int, default=None, help="requests allowed to wait (EDGEFX_QUEUE_SIZE)")
    parser.set_defaults(handler=run_serve)
    return parser


def run_serve(args: argparse.Namespace, settings: Settings | None = None) -> int:
    overrides = {
        "host": args.host,
        "port": args.port,
        "token_file": args.token_file,
        "workers": args.workers,
        "queue_size": args.queue_size,
    }
    if settings is None:
        settings = Settings.from_env(**overrides)
    else:
        settings = dataclasses.replace(settings, **{k: v for k, v in overrides.items() if v is not None})
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        serve(settings)
    except UnsafeBind as exc:
        log.error("%s", exc.message)
        return 2
    return 0
