"""How producers retry calls to rate-limited HTTP services (Reddit, GitHub, the ingest API).

A server that says how long to wait (`Retry-After`, in seconds or as an HTTP date) is obeyed, up to
a cap; otherwise the wait doubles per attempt. A failure that retrying cannot fix (a 404, a 401) is
raised at once so the caller can skip that target for this round instead of hammering it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class RetryableResponse(Exception):
    """A response worth another try; `retry_after` is how long the server asked us to wait, if it did."""

    def __init__(self, response: httpx.Response, retry_after: float | None) -> None:
        super().__init__(f"{response.request.method} {response.request.url} -> {response.status_code}")
        self.status_code = response.status_code
        self.retry_after = retry_after


def retry_after_seconds(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """The `Retry-After` header as seconds from now, or None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        return max(parsedate_to_datetime(value).timestamp() - now(), 0.0)
    except (TypeError, ValueError):
        return None


def raise_if_retryable(response: httpx.Response) -> None:
    """Throttling and server errors become `RetryableResponse`; everything else is the caller's to judge."""
    if response.status_code in RETRYABLE_STATUSES:
        raise RetryableResponse(response, retry_after_seconds(response))


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and waits for one call; tests pass tiny values, production keeps the defaults."""

    attempts: int = 5
    initial_backoff_seconds: float = 1.0
    max_wait_seconds: float = 64.0
    jitter: float = 0.5  # up to this fraction of the backoff is added at random, so clients spread out

    def wait_seconds(self, state: RetryCallState) -> float:
        backoff = self.initial_backoff_seconds * 2 ** (state.attempt_number - 1)
        backoff += random.uniform(0, self.jitter * backoff)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RetryableResponse) and error.retry_after is not None:
            return min(error.retry_after, self.max_wait_seconds)
        return float(min(backoff, self.max_wait_seconds))

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Runs `attempt` until it succeeds, raises something not retryable, or attempts run out."""
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.attempts),
            wait=self.wait_seconds,
            retry=retry_if_exception_type((RetryableResponse, httpx.TransportError)),
            reraise=True,
        )
        result: T = await retrying(attempt)
        return result
