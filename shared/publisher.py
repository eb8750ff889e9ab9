"""Appending raw events to the ingest stream: the one way any producer hands feedback to the system.

With several partitions (or on a Redis Cluster) there is one ingest stream per partition, and an
event goes to the partition of the item it is about, so that every event about an item meets that
item's dedupe key in its own slot. The item id comes with the event (`RawEvent.item_id`): the
publisher cannot derive it, the source's normalizer does (services/ingest/routing.py).
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.resources import files
from itertools import chain
from typing import Any

from redis.asyncio import Redis

from shared.keys import SCHEMA_VERSION, IngestField, Keys
from shared.redis_connection import is_cluster, learn_slot_map

_APPEND_SCRIPT = files("shared").joinpath("append_entries.lua").read_text()


@dataclass(frozen=True)
class RawEvent:
    """One event as a producer received it; `payload` is kept verbatim so a replay sees exactly that.

    `idempotency_key` is the producer's name for this event across its retries (empty: none).
    `item_id` is the id of the item the worker will make of it (services.ingest.routing.routed):
    needed to route it when there are several partitions, ignored on a single node.
    """

    source: str
    payload: str
    request_id: str = ""
    idempotency_key: str = ""
    item_id: str = ""

    @classmethod
    def from_json(
        cls,
        source: str,
        payload: Mapping[str, Any] | Sequence[Any],
        request_id: str = "",
        idempotency_key: str = "",
        item_id: str = "",
    ) -> RawEvent:
        return cls(source, json.dumps(payload, separators=(",", ":")), request_id, idempotency_key, item_id)


class UnroutedEvent(ValueError):
    """An event without its item id, published where there are partitions to choose from (a bug in
    the producer, never an input error: route it with `services.ingest.routing.routed`)."""


class IngestPublisher:
    """Appends raw events; the ingest group does everything else."""

    def __init__(self, redis: Redis, keys: Keys, producer: str) -> None:
        self._redis = redis
        self._partitioning = keys.partitioning
        self._streams = keys.ingest_streams
        self._routed = keys.partitioning.tagged
        self._cluster = is_cluster(redis)
        self._append_script = redis.register_script(_APPEND_SCRIPT)
        self._producer = producer

    def _fields(self, event: RawEvent) -> dict[str, str]:
        fields = {
            IngestField.VERSION: SCHEMA_VERSION,
            IngestField.SOURCE: event.source,
            IngestField.PAYLOAD: event.payload,
            IngestField.RECEIVED_AT: datetime.now(UTC).isoformat(),
            IngestField.PRODUCER: self._producer,
            IngestField.REQUEST_ID: event.request_id,
        }
        if event.idempotency_key:
            fields[IngestField.IDEMPOTENCY_KEY] = event.idempotency_key
        if self._routed:
            if not event.item_id:
                raise UnroutedEvent(f"a {event.source} event without its item id cannot be routed")
            fields[IngestField.ITEM_ID] = event.item_id
        return fields

    def _partition(self, event: RawEvent) -> int:
        return self._partitioning.of(event.item_id) if self._routed else 0

    async def publish(self, event: RawEvent) -> str:
        """Returns the event id a producer can look up: the stream entry id, qualified by its
        partition when there are several (`Partitioning.event_id`)."""
        fields = self._fields(event)
        partition = self._partition(event)
        entry_id: str = await self._redis.xadd(self._streams[partition], fields)  # type: ignore[arg-type]
        return self._partitioning.event_id(partition, entry_id)

    async def publish_many(self, events: Sequence[RawEvent]) -> list[str]:
        """One round trip for a whole batch, in order, all or nothing: a producer that retries a
        failed batch never finds half of it already accepted.

        On one server a single MULTI covers every partition's stream. A Redis Cluster runs a MULTI
        only within one slot, so there the batch is one script call per partition
        (append_entries.lua), sent concurrently: each partition's share is all or nothing, the batch
        as a whole is not. When one fails the call raises, and the producer's retry may append
        again the shares that were stored; their events then end as duplicates (every event has an
        item id the worker derives again), except those with neither an external id nor an
        `Idempotency-Key`, which become a second item.
        """
        fields = [self._fields(event) for event in events]
        partitions = [self._partition(event) for event in events]
        entry_ids = await self._append(fields, partitions)
        return [self._partitioning.event_id(p, e) for p, e in zip(partitions, entry_ids, strict=True)]

    async def _append(self, fields: Sequence[dict[str, str]], partitions: Sequence[int]) -> list[str]:
        if not self._cluster:
            return await self._append_atomically(
                [(self._streams[p], f) for p, f in zip(partitions, fields, strict=True)]
            )
        await learn_slot_map(self._redis)  # before the shares' concurrent first commands
        by_partition: dict[int, list[int]] = defaultdict(list)
        for index, partition in enumerate(partitions):
            by_partition[partition].append(index)
        shares = list(by_partition.items())
        results = await asyncio.gather(
            *(
                self._append_share(self._streams[partition], [fields[i] for i in indexes])
                for partition, indexes in shares
            ),
            return_exceptions=True,
        )
        entry_ids = [""] * len(fields)
        for (_, indexes), result in zip(shares, results, strict=True):
            if isinstance(result, BaseException):
                raise result
            for index, entry_id in zip(indexes, result, strict=True):
                entry_ids[index] = entry_id
        return entry_ids

    async def _append_share(self, stream: str, share: Sequence[dict[str, str]]) -> list[str]:
        args: list[str | int] = []
        for fields in share:
            args.append(2 * len(fields))
            args += chain.from_iterable(fields.items())
        entry_ids: list[str] = await self._append_script(keys=[stream], args=args)
        return entry_ids

    async def _append_atomically(self, appends: Sequence[tuple[str, dict[str, str]]]) -> list[str]:
        async with self._redis.pipeline(transaction=True) as pipe:
            for stream, fields in appends:
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
            entry_ids: list[str] = await pipe.execute()
        return entry_ids
