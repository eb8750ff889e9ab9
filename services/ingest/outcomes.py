"""What became of an ingest event, kept for producers to look up (`GET /ingest/events/{id}`).

The worker's write script records the outcome in the same atomic step as the effect; the
dead-letter script records `dead_lettered` (see `dead_letter_outcome`). No record and the entry
still in the stream: `pending`.
Records are JSON objects in one hash per hour of entry ids (`Keys.event_outcomes`), one per partition.
An event id does not say its partition (the entry id is the stream's), so a producer's lookup asks
every partition's hour hash in one pipeline (`find_event`): on a cluster one round trip per master.
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


async def find_event(redis: Redis, keys: Keys, entry_id: str) -> EventFound | None:
    """The event's outcome in whichever partition holds it, else whether it is still in a stream.

    Two pipelines at most: one HGET per partition, then (no record) one XRANGE per partition stream.
    Entry ids are unique per stream only: in the unlikely case two partitions appended the same id,
    the lowest partition's record answers.
    """
    partitions = keys.partitions
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
