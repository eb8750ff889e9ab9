"""Re-enqueue unclustered items that no event will ever deliver, and forget deleted ones.

Anything can add an id to an unclustered set without an event (an older dashboard, a manual
fix, an event that was dead-lettered): the sweeper publishes a new-item event for every such id
that has no event still pending or undelivered in the clusterer group, and removes ids whose
`feedback:{id}` hash no longer exists. The set is read BEFORE the stream, so an item clustered in
between is at worst re-enqueued once, and the clusterer acks that event as already done. Each
partition has its own set and stream: a sweep does every partition, one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared.keys import CLUSTERER_GROUP, SCHEMA_VERSION, Keys, NewItemField

PAGE = 1000


@dataclass(frozen=True)
class SweepResult:
    requeued: int
    dropped: int


class Sweeper:
    def __init__(self, redis: Redis, keys: Keys, group: str = CLUSTERER_GROUP) -> None:
        self._redis = redis
        self._keys = keys
        self._group = group

    async def sweep(self) -> SweepResult:
        requeued = dropped = 0
        for keys in self._keys.partitions:
            result = await self._sweep_partition(keys)
            requeued, dropped = requeued + result.requeued, dropped + result.dropped
        return SweepResult(requeued, dropped)

    async def _sweep_partition(self, keys: Keys) -> SweepResult:
        waiting = {item_id async for item_id in self._redis.sscan_iter(keys.unclustered, count=PAGE)}
        if not waiting:
            return SweepResult(0, 0)
        orphans = sorted(waiting - await self._ids_with_live_events(keys.new_item_stream))
        if not orphans:
            return SweepResult(0, 0)
        async with self._redis.pipeline(transaction=False) as pipe:
            for item_id in orphans:
                pipe.hmget(keys.feedback(item_id), ["source", "created_at"])
            found: list[list[str | None]] = await pipe.execute()
        async with self._redis.pipeline(transaction=True) as pipe:
            dropped = 0
            for item_id, (source, created_at) in zip(orphans, found, strict=True):
                if source is None:
                    pipe.srem(keys.unclustered, item_id)
                    dropped += 1
                else:
                    pipe.xadd(keys.new_item_stream, self._event(item_id, source, created_at or ""))
            await pipe.execute()
        return SweepResult(len(orphans) - dropped, dropped)

    @staticmethod
    def _event(item_id: str, source: str, created_at: str) -> dict[str | bytes, str | bytes | int | float]:
        return {
            NewItemField.VERSION: SCHEMA_VERSION,
            NewItemField.ID: item_id,
            NewItemField.SOURCE: source,
            NewItemField.CREATED_AT: created_at,
        }

    async def _ids_with_live_events(self, stream: str) -> set[str]:
        """Item ids of entries the group has not acked: pending ones and those not yet delivered."""
        last_delivered = await self._last_delivered(stream)
        ids = set(await self._item_ids_after(stream, last_delivered))
        if last_delivered == "0-0":
            return ids  # nothing delivered, so nothing pending (and maybe no group to ask)
        start = "-"
        while True:
            page = await self._redis.xpending_range(
                stream, self._group, min=start, max=last_delivered, count=PAGE
            )
            async with self._redis.pipeline(transaction=False) as pipe:
                for entry in page:
                    pipe.xrange(stream, min=entry["message_id"], max=entry["message_id"])
                for entries in await pipe.execute():
                    ids.update(fields.get(NewItemField.ID, "") for _, fields in entries)
            if len(page) < PAGE:
                return ids
            start = "(" + page[-1]["message_id"]

    async def _last_delivered(self, stream: str) -> str:
        """The group's last-delivered id; "0-0" when it does not exist yet (then nothing was delivered)."""
        try:
            groups = await self._redis.xinfo_groups(stream)
        except ResponseError:
            return "0-0"
        for group in groups:
            if group["name"] == self._group:
                return str(group["last-delivered-id"])
        return "0-0"

    async def _item_ids_after(self, stream: str, last_delivered: str) -> list[str]:
        ids: list[str] = []
        low = "(" + last_delivered
        while True:
            entries = await self._redis.xrange(stream, min=low, max="+", count=PAGE)
            ids += [fields.get(NewItemField.ID, "") for _, fields in entries]
            if len(entries) < PAGE:
                return ids
            low = "(" + entries[-1][0]
