"""The one retry policy every remote call goes through: which waits it asks for and when it gives up."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from shared.retry_policy import (
    RemoteService,
    RemoteUnavailableError,
    RetryableResponse,
    RetryPolicy,
    retry_after_seconds,
)

SERVICE = RemoteService("reddit")
REQUEST = httpx.Request("GET", "https://www.reddit.com/r/gaming/new.json")


def answer(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {}, request=REQUEST)


def throttled(retry_after: str) -> RetryableResponse:
    response = answer(429, {"Retry-After": retry_after})
    return RetryableResponse(response, retry_after_seconds(response))


def test_backoff_doubles_with_up_to_half_again_of_jitter() -> None:
    policy = RetryPolicy(initial_delay_seconds=1.0, max_delay_seconds=64.0)
    for attempt in (1, 2, 3, 4):
        waits = {policy.wait_seconds(SERVICE, httpx.ConnectError("refused"), attempt) for _ in range(50)}
        base = 2.0 ** (attempt - 1)
        assert all(base <= wait <= 1.5 * base for wait in waits)
        assert len(waits) > 1  # spread out, not in lockstep


def test_the_server_wait_is_taken_as_given_up_to_the_cap() -> None:
    policy = RetryPolicy(max_delay_seconds=64.0)
    assert policy.wait_seconds(SERVICE, throttled("7"), 1) == 7.0
    assert policy.wait_seconds(SERVICE, throttled("0.5"), 3) == 0.5
    assert policy.wait_seconds(SERVICE, throttled("600"), 1) == 64.0


def test_a_service_with_its_own_errors_names_its_own_wait() -> None:
    class QuotaError(Exception):
        pass

    sdk = RemoteService("sdk", lambda error: isinstance(error, QuotaError), lambda error: 53.0)
    assert RetryPolicy().wait_seconds(sdk, QuotaError(), 1) == 53.0


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    in_ninety = format_datetime(datetime(2026, 1, 1, 12, 1, 30, tzinfo=UTC), usegmt=True)
    assert retry_after_seconds(answer(429, {"Retry-After": "12"})) == 12.0
    assert retry_after_seconds(answer(429, {"Retry-After": in_ninety}), now.timestamp) == 90.0
    assert retry_after_seconds(answer(429, {"Retry-After": "soon"})) is None
    assert retry_after_seconds(answer(429)) is None


async def test_transient_failures_are_retried_until_one_succeeds() -> None:
    outcomes: list[BaseException | str] = [httpx.ConnectError("refused"), throttled("0"), "ok"]

    async def attempt() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert await RetryPolicy(attempts=3, initial_delay_seconds=0.001).call(SERVICE, attempt) == "ok"


async def test_a_failure_that_is_not_transient_is_raised_at_once() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("404 is not worth another try")

    with pytest.raises(ValueError):
        await RetryPolicy(attempts=5, initial_delay_seconds=0.001).call(SERVICE, attempt)
    assert calls == 1


def test_giving_up_names_the_service_the_attempts_and_the_last_error() -> None:
    def attempt() -> None:
        raise RetryableResponse(answer(503), None)

    with pytest.raises(RemoteUnavailableError, match=r"reddit: gave up after 3 attempts.*HTTP 503") as caught:
        RetryPolicy(attempts=3, initial_delay_seconds=0.001).call_blocking(SERVICE, attempt)
    assert isinstance(caught.value.__cause__, RetryableResponse)
