"""What keeps the service safe unattended: the bind check, the API token, body limits and security headers."""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from fastapi import Request

from edgefx.runtime.config import Settings
from edgefx.runtime.errors import BodyTooLarge, EdgefxError, Unauthorized

MIN_TOKEN_CHARS = 16
API_PREFIX = "/v1/"  # the versioned API; the kiosk page lives outside it

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class UnsafeBind(EdgefxError):
    """The service would listen beyond loopback without a token."""

    code = "unsafe_bind"
    status = 500


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


def token_guard(token: str | None) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency that refuses a request without `Authorization: Bearer <token>`; a no-op without a token."""
    token_bytes = token.encode() if token else None

    async def require_token(request: Request) -> None:
        if token_bytes is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise Unauthorized("this API needs a token: send 'Authorization: Bearer <token>'")
        if not hmac.compare_digest(presented.strip().encode(), token_bytes):
            raise Unauthorized("wrong token")

    return require_token


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
        is_api = scope.get("path", "").startswith(API_PREFIX)

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
