"""Reading a repository's issues from GitHub's REST API: conditional, paginated, rate-limit aware.

Issues come oldest-update first (`sort=updated&direction=asc`), so each page handed over moves the
sync cursor forward and an interrupted sync resumes after the last accepted page. The primary rate
limit is per token, so once GitHub reports it spent, no request to any repository starts before
its reset; secondary limits (403/429 with `Retry-After`) are retried after the time GitHub asks.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from services.poller.producer.throttle import Throttle
from shared.github_repository import Repository
from shared.github_sync_state import RepoSyncState
from shared.retry_policy import (
    RemoteService,
    RetryableResponse,
    RetryPolicy,
    raise_if_retryable,
    retry_after_seconds,
)

API_VERSION = "2022-11-28"
USER_AGENT = "soulcaster-streams/0.1 (github-sync)"
PAGE_SIZE = 100
PRIMARY_LIMIT_KEY = "github"
GITHUB = RemoteService("github")
MAX_PAGES_PER_SYNC = 50  # 5,000 issues; the cursor keeps the rest for the next round, other repos go first


class GitHubRequestFailed(Exception):
    """GitHub refused for a reason waiting will not fix (404, 401, a permission 403)."""


@dataclass(frozen=True)
class IssuePage:
    """One page of the listing; `items` holds issues and pull requests as GitHub sent them."""

    items: list[dict[str, Any]]
    etag: str | None
    not_modified: bool = False


class GitHubIssues:
    def __init__(
        self,
        http: httpx.AsyncClient,
        api_url: str,
        token: str = "",
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._api_url = api_url.rstrip("/")
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._primary_limit = Throttle(0.0)
        self._headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": USER_AGENT,
        }
        if token:
            self._headers["Authorization"] = f"Bearer {token}"

    async def pages(self, repo: Repository, state: RepoSyncState) -> AsyncIterator[IssuePage]:
        """Open issues on a first sync; afterwards everything updated since the cursor, closed included."""
        params = {
            "per_page": str(PAGE_SIZE),
            "sort": "updated",
            "direction": "asc",
            "state": "open" if state.first_sync else "all",
        }
        if since := state.since_param():
            params["since"] = since
        listing = f"{self._api_url}/repos/{repo.owner}/{repo.name}/issues"
        response = await self._get(listing, params, state.etag)
        if response.status_code == 304:
            yield IssuePage([], state.etag, not_modified=True)
            return
        etag = response.headers.get("etag")
        for _ in range(MAX_PAGES_PER_SYNC):
            yield IssuePage(self._issues(response), etag)
            url = response.links.get("next", {}).get("url")
            if url is None:
                return
            response = await self._get(url, None, None)
            etag = None

    @staticmethod
    def _issues(response: httpx.Response) -> list[dict[str, Any]]:
        items = response.json()
        if not isinstance(items, list):
            raise GitHubRequestFailed(f"{response.request.url}: expected a JSON array of issues")
        return items

    async def _get(self, url: str, params: dict[str, str] | None, etag: str | None) -> httpx.Response:
        """`params` None for a `Link` URL: it carries its own query, which any params would replace."""
        headers = {**self._headers, **({"If-None-Match": etag} if etag else {})}

        async def attempt() -> httpx.Response:
            await self._primary_limit.wait(PRIMARY_LIMIT_KEY)
            response = await self._http.get(url, params=params, headers=headers)
            if response.headers.get("x-ratelimit-remaining") == "0":
                self._primary_limit.hold(self._seconds_until_reset(response))
            self._raise_for_status(response)
            return response

        return await self._retry.call(GITHUB, attempt)

    def _raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code in {403, 429} and self._is_rate_limited(response):
            raise RetryableResponse(response, self._rate_limit_wait(response))
        raise_if_retryable(response)
        if response.status_code != 304 and not response.is_success:
            raise GitHubRequestFailed(
                f"{response.request.url} -> {response.status_code}: {response.text[:300]}"
            )

    @staticmethod
    def _is_rate_limited(response: httpx.Response) -> bool:
        """A 403 is a rate limit only when GitHub says so; otherwise it is a permission problem."""
        return (
            response.status_code == 429
            or "retry-after" in response.headers
            or response.headers.get("x-ratelimit-remaining") == "0"
            or "rate limit" in response.text.lower()
        )

    def _rate_limit_wait(self, response: httpx.Response) -> float | None:
        """`Retry-After` first (secondary limits), else the primary limit's reset time."""
        retry_after = retry_after_seconds(response, self._clock)
        if retry_after is not None:
            return retry_after
        if response.headers.get("x-ratelimit-remaining") == "0":
            return self._seconds_until_reset(response)
        return None

    def _seconds_until_reset(self, response: httpx.Response) -> float:
        reset = float(response.headers.get("x-ratelimit-reset", "0") or 0)
        return max(reset - self._clock(), 0.0)
