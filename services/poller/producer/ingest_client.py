"""The producers' side of the ingest API: every stateless producer talks to Soulcaster only through it.

Producers keep no state of their own (no Redis, no files), so everything they remember (sync
cursors, ETags, configuration) goes through this client too, and a restarted producer resumes.
"""

from __future__ import annotations

from typing import Any

import httpx

from shared.retry_policy import RemoteService, RetryPolicy, raise_if_retryable
from shared.settings import Settings

INGEST_API = RemoteService("ingest-api")


class IngestApiRejected(Exception):
    """A 4xx that retrying cannot fix (bad payload, bad key); the API's reason is in the message."""

    def __init__(self, response: httpx.Response) -> None:
        request = response.request
        super().__init__(
            f"{request.method} {request.url.path} -> {response.status_code}: {response.text[:500]}"
        )
        self.status_code = response.status_code


class IngestApiClient:
    """Calls with the producer key (`INGEST_API_KEY`) or, for config and admin routes, `ADMIN_API_KEY`."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        api_key: str = "",
        admin_key: str = "",
        retry: RetryPolicy | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._admin_key = admin_key
        self._retry = retry or RetryPolicy()

    @classmethod
    def from_settings(
        cls, http: httpx.AsyncClient, settings: Settings, retry: RetryPolicy | None = None
    ) -> IngestApiClient:
        return cls(
            http,
            settings.ingest_api_url,
            api_key=settings.ingest_api_key,
            admin_key=settings.admin_api_key,
            retry=retry,
        )

    async def ingest(self, path: str, body: Any) -> Any:
        """Hands a payload to an `/ingest/...` route; returns the API's receipt once it answered 202."""
        response = await self.request("POST", path, json=body)
        return response.json()

    async def get_json(self, path: str, *, admin: bool = False) -> Any:
        return (await self.request("GET", path, admin=admin)).json()

    async def put_json(self, path: str, body: Any, *, admin: bool = False) -> Any:
        return (await self.request("PUT", path, json=body, admin=admin)).json()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        admin: bool = False,
        read_timeout_seconds: float | None = None,
    ) -> httpx.Response:
        """Retries throttling, 5xx and network errors; raises `IngestApiRejected` for any other non-2xx."""
        key = self._admin_key if admin else self._api_key
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        request_timeout = httpx.USE_CLIENT_DEFAULT if read_timeout_seconds is None else read_timeout_seconds

        async def attempt() -> httpx.Response:
            response = await self._http.request(
                method,
                f"{self._base_url}{path}",
                json=json,
                params=params,
                headers=headers,
                timeout=request_timeout,
            )
            raise_if_retryable(response)
            if not response.is_success:
                raise IngestApiRejected(response)
            return response

        return await self._retry.call(INGEST_API, attempt)
