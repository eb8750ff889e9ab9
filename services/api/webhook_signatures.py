"""HMAC-SHA256 signatures of webhook bodies (Sentry, GitHub), checked over the raw bytes.

Sentry and GitHub cannot send a Bearer key, so a webhook endpoint accepts either a valid signature
(when its secret is set) or a valid API key (for in-house producers such as the GitHub sync). A
signature that is present but wrong is always refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from services.api.auth import api_key_rejection, presented_key_valid
from shared.settings import Settings


def hex_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class WebhookSignature:
    header: str
    expected: Callable[[str, bytes], str]

    def authorize(self, request: Request, body: bytes, secret: str, settings: Settings) -> None:
        presented = request.headers.get(self.header)
        if secret and presented is not None:
            if not hmac.compare_digest(presented.strip().encode(), self.expected(secret, body).encode()):
                raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"invalid {self.header} signature")
            return
        if presented_key_valid(request, settings):
            return
        if secret:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"missing {self.header} header")
        if settings.ingest_api_keys:
            raise api_key_rejection()


SENTRY_SIGNATURE = WebhookSignature("Sentry-Hook-Signature", hex_signature)
GITHUB_SIGNATURE = WebhookSignature(
    "X-Hub-Signature-256", lambda secret, body: f"sha256={hex_signature(secret, body)}"
)
