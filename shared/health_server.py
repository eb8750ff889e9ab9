"""A tiny HTTP endpoint for worker processes: liveness, readiness and Prometheus metrics.

Workers serve no API, but Kubernetes needs probes and Prometheus needs a scrape target. Liveness is
the consumer loop's own heartbeat, not "the process answers": a wedged loop must fail its probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

log = logging.getLogger(__name__)

LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"

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

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

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


def _text(ok: bool, message: str) -> tuple[str, str, bytes]:
    return ("200 OK" if ok else "503 Service Unavailable"), "text/plain", f"{message}\n".encode()
