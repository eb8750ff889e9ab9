"""Counts answered ingest requests per endpoint kind and status (`api_requests_total`).

Counted at the ASGI edge so that rejections (401, 413, 422) count as well as acceptances; the
label values are bounded to the known endpoint kinds.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.ingest.normalizers import NORMALIZERS
from shared.metrics import api_requests_total

_INGEST_PREFIX = "/ingest/"


def ingest_kind(path: str) -> str | None:
    if not path.startswith(_INGEST_PREFIX):
        return None
    kind = path[len(_INGEST_PREFIX) :].rstrip("/")
    return kind if kind in NORMALIZERS else None


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = ingest_kind(scope["path"]) if scope["type"] == "http" else None
        if kind is None:
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counted)
        finally:
            api_requests_total.labels(source=kind, status=str(status)).inc()
