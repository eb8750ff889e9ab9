"""Who may call the API: Bearer keys, read from the `Authorization` header in one place.

Producer and read routes (`require_api_key`) take a key from INGEST_API_KEYS or ADMIN_API_KEY once
producer keys are configured; with none configured the API is open, which is the single-machine
default. Operator routes (`require_admin_key`) take only ADMIN_API_KEY once it is set: no key is
401, another valid key is 403. Keys are compared in constant time, every configured key each time.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

from services.api.resources import app_resources
from shared.settings import Settings


def presented_bearer(request: Request) -> bytes | None:
    """The key after `Bearer `, or None when the header is absent, of another scheme, or empty."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    key = presented.strip()
    return key.encode() if scheme.lower() == "bearer" and key else None


def _matches_any(presented: bytes, keys: list[str]) -> bool:
    matches = [hmac.compare_digest(presented, key.encode()) for key in keys if key]
    return any(matches)


def presented_key_valid(request: Request, settings: Settings) -> bool:
    presented = presented_bearer(request)
    return presented is not None and _matches_any(
        presented, [*settings.ingest_api_keys, settings.admin_api_key]
    )


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


def require_admin_key(request: Request) -> None:
    """Router dependency for operator routes (configuration, triggers)."""
    admin_key = app_resources(request).settings.admin_api_key
    if not admin_key:
        return
    presented = presented_bearer(request)
    if presented is None:
        raise api_key_rejection()
    if not _matches_any(presented, [admin_key]):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this route needs the admin key")
