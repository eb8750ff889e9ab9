"""A tiny HTTP endpoint for worker processes: liveness, readiness and Prometheus metrics.

Workers serve no API, but Kubernetes needs probes and Prometheus needs a scrape target. Liveness is
the consumer loop's own heartbeat, not "the process answers": a wedged loop must fail its probe.

Two workers on one host both default to port 8081. A port that was only defaulted gives way to a
free one (logged); a port set explicitly (`HEALTH_PORT`) is what probes and scrapes point at, so a
busy one stops the process with a one-line error rather than serving somewhere unexpected.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.metrics import heartbeat_age_seconds, heartbeat_stale_after_seconds
from shared.settings import Settings

log = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"
HEALTH_HOST = "0.0.0.0"

ReadinessCheck = Callable[[], Awaitable[bool]]


class HealthServer:
    def __init__(
        self,
        host: str,
        port: int,
        last_beat: Callable[[], float],
        stale_after_seconds: float,
        ready: ReadinessCheck | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._last_beat = last_beat
        self._stale_after = stale_after_seconds
        self._ready = ready
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self, any_port_if_busy: bool = False) -> None:
        """Bind the port; with `any_port_if_busy`, a taken port gives way to a free one."""
        try:
            self._server = await asyncio.start_server(self._serve, self._host, self._port)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            if not any_port_if_busy:
                raise HealthPortBusy(f"HEALTH_PORT {self._port} is already in use on {self._host}") from None
            self._server = await asyncio.start_server(self._serve, self._host, 0)
            log.warning(
                "default health port %d is busy; serving health and metrics on port %d instead",
                self._port,
                self.port,
                extra={"port": self.port},
            )
        heartbeat_age_seconds.set_function(lambda: time.monotonic() - self._last_beat())
        heartbeat_stale_after_seconds.set(self._stale_after)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5)
            parts = request_line.decode("latin-1").split()
            path = parts[1].split("?", 1)[0] if len(parts) > 1 else ""
            status, content_type, body = await self._respond(path)
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError) as exc:
            log.debug("health request dropped: %s", exc)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _respond(self, path: str) -> tuple[str, str, bytes]:
        if path == METRICS_PATH:
            return "200 OK", CONTENT_TYPE_LATEST, generate_latest()
        if path == LIVENESS_PATH:
            age = time.monotonic() - self._last_beat()
            ok = age < self._stale_after
            return _text(ok, f"heartbeat {age:.1f}s ago")
        if path == READINESS_PATH:
            ok = await self._ready() if self._ready else True
            return _text(ok, "ready" if ok else "not ready")
        return "404 Not Found", "text/plain", b"not found\n"


class HealthPortBusy(OSError):
    pass


async def start_health_server(
    settings: Settings,
    last_beat: Callable[[], float],
    stale_after_seconds: float,
    ready: ReadinessCheck | None = None,
) -> HealthServer:
    """The process's health server on `HEALTH_PORT`; a busy port set explicitly ends the process
    with a one-line message (SystemExit), a busy default one is replaced by a free port."""
    server = HealthServer(HEALTH_HOST, settings.health_port, last_beat, stale_after_seconds, ready)
    try:
        await server.start(any_port_if_busy="health_port" not in settings.model_fields_set)
    except HealthPortBusy as exc:
        raise SystemExit(f"error: {exc}; free it or set HEALTH_PORT to another port") from None
    return server


def _text(ok: bool, message: str) -> tuple[str, str, bytes]:
    return ("200 OK" if ok else "503 Service Unavailable"), "text/plain", f"{message}\n".encode()
