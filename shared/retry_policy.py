"""How every service retries calls to a remote HTTP service: Reddit, GitHub, the ingest API, Gemini, Upstash.

The rules, the same for all of them:
- only a failure the service's `RemoteService.is_transient` accepts is tried again; anything else
  (a 404, a bad key) is raised at once, so the caller can skip that target instead of hammering it;
- a wait the server named (`Retry-After` in seconds or as an HTTP date, Gemini's RetryInfo, Reddit's
  and GitHub's rate-limit reset) is obeyed as given; otherwise the wait doubles per attempt with
  random jitter on top, so clients that failed together do not come back in lockstep;
- no wait exceeds `max_delay_seconds`, so one call cannot outlast a consumer's visibility timeout
  (a quota 429 may ask for a minute);
- after the last attempt the call raises `RemoteUnavailableError`, naming the service, the number
  of attempts and the last error (chained as its cause).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import NoReturn, TypeVar

import httpx
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from shared.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class RetryableResponse(Exception):
    """An HTTP answer worth another try; `retry_after` is the wait in seconds the server asked for, if any."""

    def __init__(self, response: httpx.Response, retry_after: float | None, detail: str = "") -> None:
        request = response.request
        super().__init__(
            f"{request.method} {request.url} -> HTTP {response.status_code}"
            + (f": {detail}" if detail else "")
        )
        self.status_code = response.status_code
        self.retry_after = retry_after


class RemoteUnavailableError(RuntimeError):
    """A remote service kept failing transiently through every attempt."""


def retry_after_seconds(response: httpx.Response, now: Callable[[], float] = time.time) -> float | None:
    """`Retry-After` (seconds, or an HTTP date) as seconds from now; None when absent or unreadable."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - now(), 0.0)
    except (TypeError, ValueError):
        return None


def raise_if_retryable(response: httpx.Response) -> None:
    """Throttling and server errors become `RetryableResponse`; everything else is the caller's to judge."""
    if response.status_code in RETRYABLE_STATUSES:
        raise RetryableResponse(response, retry_after_seconds(response))


def is_retryable_http_failure(error: BaseException) -> bool:
    return isinstance(error, RetryableResponse | httpx.TransportError)


def server_requested_wait(error: BaseException) -> float | None:
    return error.retry_after if isinstance(error, RetryableResponse) else None


@dataclass(frozen=True)
class RemoteService:
    """How one service's failures read. The defaults fit any client that raises `RetryableResponse`;
    an SDK with its own error types (Gemini) says which are transient and where the server's wait is."""

    name: str
    is_transient: Callable[[BaseException], bool] = is_retryable_http_failure
    requested_delay: Callable[[BaseException], float | None] = server_requested_wait


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and waits for one call; tests pass tiny values, production the defaults or the settings."""

    attempts: int = 5
    initial_delay_seconds: float = 1.0
    max_delay_seconds: float = 64.0
    jitter: float = 0.5  # up to this fraction of the backoff is added at random

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            attempts=settings.provider_retry_attempts,
            initial_delay_seconds=settings.provider_retry_initial_delay_seconds,
            max_delay_seconds=settings.provider_retry_max_delay_seconds,
        )

    def backoff_seconds(self, attempt_number: int) -> float:
        """The wait after failed attempt `attempt_number` (1-based) when the server named none."""
        backoff = self.initial_delay_seconds * 2 ** (attempt_number - 1)
        backoff += random.uniform(0, self.jitter * backoff)
        return float(min(backoff, self.max_delay_seconds))

    def wait_seconds(self, service: RemoteService, error: BaseException, attempt_number: int) -> float:
        requested = service.requested_delay(error)
        if requested is not None:
            return min(requested, self.max_delay_seconds)
        return self.backoff_seconds(attempt_number)

    async def call(self, service: RemoteService, attempt: Callable[[], Awaitable[T]]) -> T:
        """Awaits `attempt()` until it succeeds, raises something not transient, or attempts run out.
        `attempt` may be any callable returning an awaitable (a lambda too): tenacity awaits only
        what it recognises as a coroutine function, so the attempt is wrapped in one."""

        async def coroutine_attempt() -> T:
            return await attempt()

        result: T = await AsyncRetrying(**_Retrier(self, service).options())(coroutine_attempt)  # type: ignore[arg-type]
        return result

    def call_blocking(self, service: RemoteService, attempt: Callable[[], T]) -> T:
        """`call` for synchronous clients (the embedder runs in a worker thread)."""
        result: T = Retrying(**_Retrier(self, service).options())(attempt)  # type: ignore[arg-type]
        return result


class _Retrier:
    """The tenacity options for one call of `service` under `policy`."""

    def __init__(self, policy: RetryPolicy, service: RemoteService) -> None:
        self._policy = policy
        self._service = service

    def options(self) -> dict[str, object]:
        return {
            "retry": retry_if_exception(self._service.is_transient),
            "stop": stop_after_attempt(self._policy.attempts),
            "wait": self._wait,
            "before_sleep": self._log_retry,
            "retry_error_callback": self._give_up,
        }

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if error is None:
            return self._policy.backoff_seconds(state.attempt_number)
        return self._policy.wait_seconds(self._service, error, state.attempt_number)

    def _log_retry(self, state: RetryCallState) -> None:
        log.warning(
            "transient failure of a remote service, retrying",
            extra={
                "service": self._service.name,
                "attempt": state.attempt_number,
                "sleep_seconds": round(state.upcoming_sleep, 3),
                "error": repr(state.outcome.exception() if state.outcome else None),
            },
        )

    def _give_up(self, state: RetryCallState) -> NoReturn:
        error = state.outcome.exception() if state.outcome else None
        raise RemoteUnavailableError(
            f"{self._service.name}: gave up after {state.attempt_number} attempts; last error: {error}"
        ) from error
