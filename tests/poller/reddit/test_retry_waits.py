"""The waits the shared retry policy asks for: jittered exponential backoff, or exactly the server's wait."""

from __future__ import annotations

import httpx
from tenacity import AsyncRetrying, RetryCallState
from tenacity import Future as AttemptFuture

from services.poller.producer.retry_policy import RetryableResponse, RetryPolicy


def state_after(attempt: int, error: BaseException) -> RetryCallState:
    state = RetryCallState(AsyncRetrying(), None, (), {})
    state.attempt_number = attempt
    state.outcome = AttemptFuture.construct(attempt, error, True)
    return state


def throttled(retry_after: str) -> RetryableResponse:
    request = httpx.Request("GET", "https://www.reddit.com/r/gaming/new.json")
    response = httpx.Response(429, headers={"Retry-After": retry_after}, request=request)
    return RetryableResponse(response, float(retry_after))


def test_backoff_doubles_with_up_to_half_again_of_jitter() -> None:
    policy = RetryPolicy(initial_backoff_seconds=1.0, max_wait_seconds=64.0)
    for attempt in (1, 2, 3, 4):
        waits = {policy.wait_seconds(state_after(attempt, httpx.ConnectError("refused"))) for _ in range(50)}
        base = 2.0 ** (attempt - 1)
        assert all(base <= wait <= 1.5 * base for wait in waits)
        assert len(waits) > 1  # spread out, not in lockstep


def test_the_server_wait_is_taken_as_given_up_to_the_cap() -> None:
    policy = RetryPolicy(max_wait_seconds=64.0)
    assert policy.wait_seconds(state_after(1, throttled("7"))) == 7.0
    assert policy.wait_seconds(state_after(1, throttled("600"))) == 64.0
