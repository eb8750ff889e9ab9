"""Fetching one Reddit listing (`/r/{subreddit}/{sort}.json`) the way Reddit asks clients to behave.

A descriptive User-Agent, at most one request per second per subreddit, conditional GETs with the
last ETag, and the server's own pacing: `Retry-After` on a 429, and `X-Ratelimit-Remaining/Reset`
on every answer (a spent quota holds every request until the reset). Posts are returned verbatim as
listing children: the ingest API keeps the payload as received, so a replay sees what Reddit sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from services.poller.producer.throttle import Throttle
from services.poller.reddit.auth import RedditAppAuth
from shared.retry_policy import (
    RETRYABLE_STATUSES,
    RemoteService,
    RetryableResponse,
    RetryPolicy,
    retry_after_seconds,
)

REDDIT = RemoteService("reddit")
LISTING_LIMIT = 100
SORTS = ("new", "hot", "top", "rising")


@dataclass(frozen=True)
class Listing:
    subreddit: str
    sort: str

    @property
    def key(self) -> str:
        return f"{self.subreddit}/{self.sort}"


@dataclass(frozen=True)
class ListingPage:
    """`posts` are `{"kind": "t3", "data": {...}}` children; none when Reddit answered 304."""

    etag: str | None
    posts: list[dict[str, Any]] = field(default_factory=list)
    not_modified: bool = False


class ListingRefused(Exception):
    """A definite no (private or banned subreddit, an unreadable body): skip it this round."""


def _header_number(response: httpx.Response, name: str) -> float | None:
    try:
        return float(response.headers[name])
    except (KeyError, ValueError):
        return None


def quota_reset_seconds(response: httpx.Response) -> float | None:
    """Seconds until Reddit's quota resets, when the answer says it is spent."""
    remaining = _header_number(response, "X-Ratelimit-Remaining")
    if remaining is None or remaining >= 1:
        return None
    return _header_number(response, "X-Ratelimit-Reset")


def reddit_retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` when given, else the quota reset when the quota is spent."""
    server_wait = retry_after_seconds(response)
    return server_wait if server_wait is not None else quota_reset_seconds(response)


def listing_children(response: httpx.Response) -> list[dict[str, Any]]:
    """The `t3` children of a Listing body; anything else is refused rather than guessed at."""
    try:
        body = response.json()
        children = body["data"]["children"]
    except (ValueError, KeyError, TypeError) as error:
        raise ListingRefused(f"{response.request.url} is not a listing: {error!r}") from error
    if not isinstance(children, list):
        raise ListingRefused(f"{response.request.url}: data.children is not a list")
    return [
        child
        for child in children
        if isinstance(child, dict) and child.get("kind") == "t3" and isinstance(child.get("data"), dict)
    ]


class RedditClient:
    """Reads listings from `base_url` (public JSON) or, with app credentials, from the OAuth host."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        user_agent: str,
        throttle: Throttle,
        retry: RetryPolicy,
        auth: RedditAppAuth | None = None,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._user_agent = user_agent
        self._throttle = throttle
        self._retry = retry
        self._auth = auth

    async def fetch(self, listing: Listing, etag: str | None) -> ListingPage:
        """Raises `ListingRefused`, or `RemoteUnavailableError` once the retry policy gives up."""

        async def attempt() -> httpx.Response:
            return await self._attempt(listing, etag)

        response = await self._retry.call(REDDIT, attempt)
        if response.status_code == 304:
            return ListingPage(etag, not_modified=True)
        if not response.is_success:
            raise ListingRefused(f"{response.request.url} -> {response.status_code}")
        return ListingPage(response.headers.get("ETag"), listing_children(response))

    async def _attempt(self, listing: Listing, etag: str | None) -> httpx.Response:
        response = await self._get(listing, etag)
        if response.status_code == 401 and self._auth is not None:
            self._auth.invalidate()
            response = await self._get(listing, etag)
        if (reset := quota_reset_seconds(response)) is not None:
            self._throttle.hold(reset)
        if response.status_code in RETRYABLE_STATUSES:
            raise RetryableResponse(response, reddit_retry_after(response))
        return response

    async def _get(self, listing: Listing, etag: str | None) -> httpx.Response:
        await self._throttle.wait(listing.subreddit)
        headers = {"User-Agent": self._user_agent, "Accept": "application/json"}
        if etag:
            headers["If-None-Match"] = etag
        if self._auth is not None:
            headers["Authorization"] = await self._auth.authorization()
        return await self._http.get(
            f"{self._base_url}/r/{listing.subreddit}/{listing.sort}.json",
            params={"limit": str(LISTING_LIMIT), "raw_json": "1"},
            headers=headers,
        )
