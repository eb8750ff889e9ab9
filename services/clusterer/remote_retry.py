"""Retries with backoff for calls to remote providers (Gemini, Upstash).

The SDKs do not cover it: google-genai retries nothing by default and, when asked to, ignores the
server's RetryInfo delay; upstash-vector retries transport errors only and never looks at the HTTP
status. So each provider says which failures are transient and what delay the server asked for,
and one policy does the waiting for both the sync (embedder thread) and async (index) callers.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from shared.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")


class ProviderUnavailableError(RuntimeError):
    """A remote provider kept failing transiently through every attempt; the batch stays pending."""


@dataclass(frozen=True)
class RetryPolicy:
    """max_delay_seconds also caps a server-requested delay, so one wait cannot outlast the
    consumer's visibility timeout and hand the batch to another replica mid-call."""

    attempts: int = 5
    initial_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            attempts=settings.provider_retry_attempts,
            initial_delay_seconds=settings.provider_retry_initial_delay_seconds,
            max_delay_seconds=settings.provider_retry_max_delay_seconds,
        )


@dataclass(frozen=True)
class TransientFailures:
    """How one provider's errors read: `is_transient` picks what to retry, `requested_delay`
    returns the server's own wait in seconds when it named one."""

    provider: str
    is_transient: Callable[[BaseException], bool]
    requested_delay: Callable[[BaseException], float | None]


class _Retrier:
    def __init__(self, policy: RetryPolicy, failures: TransientFailures) -> None:
        self._policy = policy
        self._failures = failures
        self._backoff = wait_exponential_jitter(
            initial=policy.initial_delay_seconds,
            max=policy.max_delay_seconds,
            jitter=policy.initial_delay_seconds,
        )

    def options(self) -> dict[str, object]:
        return {
            "retry": retry_if_exception(self._failures.is_transient),
            "stop": stop_after_attempt(self._policy.attempts),
            "wait": self._wait,
            "before_sleep": self._log_retry,
            "retry_error_callback": self._give_up,
        }

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        requested = self._failures.requested_delay(error) if error else None
        if requested is not None:
            return min(requested, self._policy.max_delay_seconds)
        return float(self._backoff(state))

    def _log_retry(self, state: RetryCallState) -> None:
        log.warning(
            "transient provider failure, retrying",
            extra={
                "provider": self._failures.provider,
                "attempt": state.attempt_number,
                "sleep_seconds": round(state.upcoming_sleep, 3),
                "error": repr(state.outcome.exception() if state.outcome else None),
            },
        )

    def _give_up(self, state: RetryCallState) -> NoReturn:
        error = state.outcome.exception() if state.outcome else None
        raise ProviderUnavailableError(
            f"{self._failures.provider}: gave up after {state.attempt_number} attempts; last error: {error}"
        ) from error


def call_with_retries(policy: RetryPolicy, failures: TransientFailures, call: Callable[[], T]) -> T:
    """Non-transient errors propagate at once; transient ones end as ProviderUnavailableError."""
    result: T = Retrying(**_Retrier(policy, failures).options())(call)  # type: ignore[arg-type]
    return result


async def call_with_retries_async(
    policy: RetryPolicy, failures: TransientFailures, call: Callable[[], Awaitable[T]]
) -> T:
    """`call` may be any callable returning an awaitable (a lambda too): tenacity awaits only
    what it recognises as a coroutine function, so the attempt is wrapped in one."""

    async def attempt() -> T:
        return await call()

    result: T = await AsyncRetrying(**_Retrier(policy, failures).options())(attempt)  # type: ignore[arg-type]
    return result
