"""Running the service as a process: systemd notification and watchdog, the uvicorn server, `serve()`."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

from fastapi import FastAPI

from edgefx.engine import Engine
from edgefx.runtime.config import Settings
from edgefx.service.app import create_app
from edgefx.service.memory import limit_malloc_arenas
from edgefx.service.security import check_bind, is_loopback, resolve_token

log = logging.getLogger("edgefx.service")


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


def watchdog_interval_s() -> float | None:
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and int(pid) != os.getpid()):
        return None
    return int(usec) / 2e6  # ping twice per period, as sd_watchdog_enabled(3) recommends


def uvicorn_server(app: FastAPI, settings: Settings) -> Any:
    import uvicorn

    class NotifyingServer(uvicorn.Server):
        """Tells systemd READY=1 once the socket listens, then pings the watchdog from the event loop."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.started:
                return
            sd_notify(f"READY=1\nSTATUS=serving on {settings.host}:{settings.port}")
            interval = watchdog_interval_s()
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


def serve(settings: Settings) -> None:
    """Load every model, then serve the API until SIGTERM/SIGINT. Refuses an unsafe bind before loading anything."""
    token = resolve_token(settings)
    check_bind(settings.host, token)
    limit_malloc_arenas()
    if not is_loopback(settings.host):
        log.warning("listening on %s: every /v1 route needs the token", settings.host)
    engine = Engine(settings)
    app = create_app(engine, settings, token=token)
    uvicorn_server(app, settings).run()
