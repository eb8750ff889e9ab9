"""A threaded HTTP server on 127.0.0.1:0 that records every request and plays scripted failures.

The wire-format test servers of remote services (Gemini, Upstash) build on it, so provider tests run
the real SDKs over real HTTP and can check what was sent, how often and when (recorded times are
what retry tests compare, never the wall clock around our code).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: Any
    received_at: float  # time.monotonic() when the request arrived


@dataclass(frozen=True)
class Reply:
    """A JSON reply, or raw bytes (a proxy's HTML error page, say) when `raw` is given."""

    status: int
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if self.raw is not None:
            return self.raw, "text/html"
        return json.dumps(self.body).encode(), "application/json"


class ScriptedHttpServer:
    """Subclasses implement `route`; `fail_next` queues replies served before any routing."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._scripted: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def route(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    def fail_next(self, *replies: Reply) -> None:
        with self._lock:
            self._scripted.extend(replies)

    @property
    def url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def requests_to(self, path_suffix: str) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path.endswith(path_suffix)]

    def _serve(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            scripted = self._scripted.popleft() if self._scripted else None
        if scripted is not None:
            return scripted
        with self._lock:
            return self.route(request)


def _handler_class(server: ScriptedHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms ACK stalls

        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            received_at = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            request = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=parts.query,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=_parse_json(raw),
                received_at=received_at,
            )
            reply = server._serve(request)
            payload, content_type = reply.encoded()
            self.send_response(reply.status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Silent: pytest shows the recorded requests when a test needs them."""

    return Handler


def _parse_json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
