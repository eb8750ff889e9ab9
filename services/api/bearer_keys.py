"""The admin key check (`ADMIN_API_KEY`) for operator routes; producer keys are `auth.require_api_key`.

No admin key configured means the admin routes are open (a laptop, a test); once one is set, a
request without a key is 401 and a request with a wrong key is 403.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

from services.api.auth import api_key_rejection
from services.api.resources import app_resources
from shared.settings import Settings


def settings_of(request: Request) -> Settings:
    return app_resources(request).settings


def require_admin_key(request: Request) -> None:
    admin_key = settings_of(request).admin_api_key
    if not admin_key:
        return
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise api_key_rejection()
    if not hmac.compare_digest(presented.strip().encode(), admin_key.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this route needs the admin key")
