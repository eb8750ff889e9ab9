"""What became of an ingest event, kept for producers to look up (`GET /ingest/events/{id}`).

The worker's write script records the outcome in the same atomic step as the effect; the
dead-letter script records `dead_lettered` (see `dead_letter_outcome`). No record and the entry
still in the stream: `pending`.
Records are JSON objects in one hash per hour of entry ids (`Keys.event_outcomes`), one per partition.
With several partitions the API hands out partition-qualified event ids (`2:1700000000000-0`), so a
lookup reads one partition; a bare entry id (from a log, or a new-item entry's `event_id`) is looked
up in every partition's hour hash in one pipeline (`find_event`): on a cluster one round trip per master.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from redis.asyncio import Redis

from shared.keys import Keys, Outcome, OutcomeField

__all__ = ["EventFound", "Outcome", "OutcomeField", "find_event", "read_outcome"]


async def read_outcome(redis: Redis, keys: Keys, entry_id: str) -> dict[str, str] | None:
    recorded = await redis.hget(keys.event_outcomes(entry_id), entry_id)
    return {k: str(v) for k, v in json.loads(recorded).items()} if recorded else None


@dataclass(frozen=True)
class EventFound:
    """What a lookup over every partition found: a recorded outcome, or None while the entry waits."""

    outcome: dict[str, str] | None


async def find_event(redis: Redis, keys: Keys, event_id: str) -> EventFound | None:
    """The event's outcome in its partition (or, for a bare entry id, whichever holds it), else
    whether it is still in a stream.

    Two pipelines at most: one HGET per partition asked, then (no record) one XRANGE per stream.
    Entry ids are unique per stream only: for a bare id that two partitions appended, the lowest
    partition's record answers; the qualified id the API returned names exactly one.
    """
    partition, entry_id = keys.partitioning.locate_event(event_id)
    if partition is not None and partition not in keys.partitioning.all:
        return None
    partitions = keys.partitions if partition is None else (keys.partition(partition),)
    async with redis.pipeline(transaction=False) as pipe:
        for part in partitions:
            pipe.hget(part.event_outcomes(entry_id), entry_id)
        recorded = next((found for found in await pipe.execute() if found), None)
    if recorded:
        return EventFound({k: str(v) for k, v in json.loads(recorded).items()})
    async with redis.pipeline(transaction=False) as pipe:
        for part in partitions:
            pipe.xrange(part.ingest_stream, entry_id, entry_id, count=1)
        waiting = any(await pipe.execute())
    return EventFound(None) if waiting else None
