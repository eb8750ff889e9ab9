"""Who may call the API: a Bearer key from INGEST_API_KEYS (or ADMIN_API_KEY) when keys are configured.

With no keys configured the API is open, which is the single-machine default. Keys are compared in
constant time, every configured key each time.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

from services.api.resources import app_resources
from shared.settings import Settings


def presented_key_valid(request: Request, settings: Settings) -> bool:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        return False
    offered = presented.strip().encode()
    configured = [key for key in (*settings.ingest_api_keys, settings.admin_api_key) if key]
    matches = [hmac.compare_digest(offered, key.encode()) for key in configured]
    return any(matches)


def api_key_rejection() -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "missing or invalid API key: send Authorization: Bearer <key>",
        headers={"WWW-Authenticate": "Bearer"},
    )


def require_api_key(request: Request) -> None:
    """Router dependency for producer and read endpoints."""
    settings = app_resources(request).settings
    if settings.ingest_api_keys and not presented_key_valid(request, settings):
        raise api_key_rejection()
