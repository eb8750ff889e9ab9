"""Reddit app-only OAuth: a `client_credentials` token, reused until it expires or Reddit refuses it.

Authenticated clients get a far larger quota than the public JSON endpoints (and Reddit blocks
unauthenticated server traffic more and more), but nothing else changes: same listings, same JSON.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from shared.retry_policy import RemoteService, RetryPolicy, raise_if_retryable

REDDIT_OAUTH = RemoteService("reddit-oauth")
EXPIRY_MARGIN_SECONDS = 60.0


class RedditAuthFailed(Exception):
    """Reddit refused the client id and secret; retrying with the same credentials cannot help."""


class RedditAppAuth:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        user_agent: str,
        retry: RetryPolicy,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._token_url = f"{base_url.rstrip('/')}/api/v1/access_token"
        self._credentials = (client_id, client_secret)
        self._user_agent = user_agent
        self._retry = retry
        self._clock = clock
        self._token = ""
        self._expires_at = 0.0

    async def authorization(self) -> str:
        """The `Authorization` header value, fetching a new token when there is no live one."""
        if not self._token or self._clock() >= self._expires_at:
            await self._fetch_token()
        return f"bearer {self._token}"

    def invalidate(self) -> None:
        """Reddit answered 401 to this token (revoked, or expired early): the next call fetches anew."""
        self._token = ""

    async def _fetch_token(self) -> None:
        async def attempt() -> httpx.Response:
            response = await self._http.post(
                self._token_url,
                data={"grant_type": "client_credentials"},
                auth=self._credentials,
                headers={"User-Agent": self._user_agent},
            )
            raise_if_retryable(response)
            return response

        response = await self._retry.call(REDDIT_OAUTH, attempt)
        body = _json_object(response) if response.is_success else {}
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise RedditAuthFailed(f"token request -> {response.status_code}: {response.text[:200]}")
        self._token = token
        lifetime = float(body.get("expires_in") or 3600)
        self._expires_at = self._clock() + max(lifetime - EXPIRY_MARGIN_SECONDS, 0.0)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
