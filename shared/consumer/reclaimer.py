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
        """One XPENDING page walk, then every eligible entry claimed in one pipelined round trip."""
        due: list[tuple[str, int, int]] = []  # entry id, deliveries so far, min idle for the claim
        for entry in await self._idle_entries():
            deliveries = int(entry["times_delivered"])
            if deliveries >= self._config.retry.max_deliveries:
                due.append((entry["message_id"], deliveries, self._config.retry.visibility_timeout_ms))
            elif int(entry["time_since_delivered"]) >= self._due_after_ms(deliveries):
                due.append((entry["message_id"], deliveries, self._config.retry.backoff_ms(deliveries)))
        claimed = await self._claim(due)
        retry: list[StreamMessage] = []
        exhausted: list[StreamMessage] = []
        for (_, deliveries, _), message in zip(due, claimed, strict=True):
            if message is None:
                continue
            if deliveries >= self._config.retry.max_deliveries:
                exhausted.append(StreamMessage(message.id, message.fields, deliveries))
            else:
                retry.append(StreamMessage(message.id, message.fields, deliveries + 1))
        return Reclaimed(retry, exhausted)

    async def own_deliveries(self, first_id: str, last_id: str, count: int) -> dict[str, int]:
        """How often each of this consumer's pending entries from `first_id` to `last_id` was delivered."""
        page = await self._redis.xpending_range(
            self._config.stream,
            self._config.group,
            min=first_id,
            max=last_id,
            count=count,
            consumername=self._config.consumer,
        )
        return {entry["message_id"]: int(entry["times_delivered"]) for entry in page}

    def _due_after_ms(self, deliveries: int) -> float:
        """Backoff with jitter, so entries that failed together do not all retry in the same instant."""
        return self._config.retry.backoff_ms(deliveries) * (1 + random.uniform(0, JITTER))

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
                idle=self._config.retry.visibility_timeout_ms,
            )
            found += page
            if len(page) < PAGE_SIZE:
                break
            start = "(" + page[-1]["message_id"]
        return found

    async def _claim(self, due: list[tuple[str, int, int]]) -> list[StreamMessage | None]:
        """Each entry claimed only if still idle for its own minimum (so racing reclaimers cannot both
        win); None where another consumer won, or where the entry was trimmed away (Redis 7 drops
        those from the pending list as it answers)."""
        if not due:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for entry_id, _, min_idle_ms in due:
                pipe.xclaim(
                    self._config.stream, self._config.group, self._config.consumer, min_idle_ms, [entry_id]
                )
            replies: list[list[tuple[str, dict[str, str]]]] = await pipe.execute()
        return [
            next((StreamMessage(mid, fields) for mid, fields in reply if fields), None) for reply in replies
        ]
