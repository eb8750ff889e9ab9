"""Spacing requests to a rate-limited service: at most one per interval per key, plus server holds.

Reddit asks for at most one request per second per listing source and announces a global quota in
`X-Ratelimit-*` headers; GitHub announces one too. A slot is reserved before the wait, so several
tasks sharing one throttle never start two requests in the same slot.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Throttle:
    """`interval` seconds between two requests with the same key; `hold` pauses every key.

    Keys are remembered only while their last slot could still delay a request, and at most
    `max_keys` of them, so a producer with many targets keeps a bounded memory.
    """

    def __init__(
        self,
        interval: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_keys: int = 10_000,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._sleep = sleep
        self._max_keys = max_keys
        self._next_slot: OrderedDict[str, float] = OrderedDict()
        self._held_until = 0.0

    def hold(self, seconds: float) -> None:
        """No request with any key before `seconds` from now (a server said its quota is spent)."""
        self._held_until = max(self._held_until, self._clock() + seconds)

    async def wait(self, key: str) -> None:
        """Returns when a request with `key` may start."""
        now = self._clock()
        start = max(now, self._held_until, self._next_slot.get(key, now))
        self._next_slot[key] = start + self._interval
        self._next_slot.move_to_end(key)
        self._forget_old(now)
        if start > now:
            await self._sleep(start - now)

    def _forget_old(self, now: float) -> None:
        while self._next_slot:
            oldest_key, slot = next(iter(self._next_slot.items()))
            if slot > now and len(self._next_slot) <= self._max_keys:
                return
            del self._next_slot[oldest_key]
