"""Waiting for a state, never for a time: every test that waits polls its condition with these.

The deadline only keeps a broken run from hanging and says what never happened; it measures
nothing, so a slow machine makes a test slower, not red.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence

from shared.consumer import StreamConsumer

POLL_SECONDS = 0.02
PATIENCE_SECONDS = 60.0


async def eventually(
    condition: Callable[[], object | Awaitable[object]],
    what: str = "the awaited state",
    timeout: float = PATIENCE_SECONDS,
) -> None:
    """Polls a plain or async condition until it holds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = condition()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(POLL_SECONDS)


def wait_for(condition: Callable[[], object], what: str, timeout: float = PATIENCE_SECONDS) -> None:
    """`eventually` for sync tests and background threads."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(POLL_SECONDS)


async def run_consumers(consumers: Sequence[StreamConsumer], until: Callable[[], Awaitable[bool]]) -> None:
    """Real consumers on their own tasks until `until` holds, then a graceful stop of every one."""
    tasks = [asyncio.create_task(consumer.run()) for consumer in consumers]
    try:
        await eventually(until, "the consumers to finish")
    finally:
        for consumer in consumers:
            consumer.stop()
        await asyncio.gather(*tasks)
