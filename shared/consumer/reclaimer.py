"""Taking over entries that a consumer failed or abandoned (a crashed pod, a failed try).

Redis 7.0's XAUTOCLAIM reports no delivery counts, so the reclaimer pages XPENDING (which does) and
claims each eligible entry with XCLAIM, whose min-idle check makes two reclaimers racing for one
entry safe: the first claim resets its idle time and the second claims nothing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shared.consumer.config import ConsumerConfig
from shared.consumer.message import StreamMessage

PAGE_SIZE = 100
MAX_PAGES = 10
JITTER = 0.1


@dataclass(frozen=True)
class Reclaimed:
    """Entries this consumer now owns: some to retry, some past their last chance."""

    retry: list[StreamMessage]
    exhausted: list[StreamMessage]


class Reclaimer:
    def __init__(self, redis: Redis, config: ConsumerConfig) -> None:
        self._redis = redis
        self._config = config

    async def reclaim(self) -> Reclaimed:
        retry: list[StreamMessage] = []
        exhausted: list[StreamMessage] = []
        for entry in await self._idle_entries():
            deliveries = int(entry["times_delivered"])
            if deliveries >= self._config.max_deliveries:
                claimed = await self._claim(entry, self._config.visibility_timeout_ms)
                exhausted += [StreamMessage(m.id, m.fields, deliveries) for m in claimed]
            elif int(entry["time_since_delivered"]) >= self._due_after_ms(deliveries):
                claimed = await self._claim(entry, self._config.backoff_ms(deliveries))
                retry += [StreamMessage(m.id, m.fields, deliveries + 1) for m in claimed]
        return Reclaimed(retry, exhausted)

    def _due_after_ms(self, deliveries: int) -> float:
        """Backoff with jitter, so entries that failed together do not all retry in the same instant."""
        return self._config.backoff_ms(deliveries) * (1 + random.uniform(0, JITTER))

    async def _idle_entries(self) -> list[dict[str, Any]]:
        """Pending entries idle past the visibility timeout, oldest first, a bounded number of pages."""
        found: list[dict[str, Any]] = []
        start = "-"
        for _ in range(MAX_PAGES):
            page = await self._redis.xpending_range(
                self._config.stream,
                self._config.group,
                min=start,
                max="+",
                count=PAGE_SIZE,
                idle=self._config.visibility_timeout_ms,
            )
            found += page
            if len(page) < PAGE_SIZE:
                break
            start = "(" + page[-1]["message_id"]
        return found

    async def _claim(self, entry: dict[str, Any], min_idle_ms: int) -> list[StreamMessage]:
        """Claim one entry if it is still idle enough; an entry trimmed away is acked and dropped."""
        entry_id = entry["message_id"]
        claimed = await self._redis.xclaim(
            self._config.stream, self._config.group, self._config.consumer, min_idle_ms, [entry_id]
        )
        messages = [StreamMessage(mid, fields) for mid, fields in claimed if fields]
        if claimed and not messages:
            await self._redis.xack(self._config.stream, self._config.group, entry_id)
        return messages
