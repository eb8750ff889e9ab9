"""What became of an ingest event, kept for producers to look up (`GET /ingest/events/{id}`).

The worker's write script records the outcome in the same atomic step as the effect; the
dead-letter script records `dead_lettered` (see `dead_letter_outcome`). No record and the entry
still in the stream: `pending`.
Records are JSON objects in one hash per hour of entry ids (`Keys.event_outcomes`).
"""

from __future__ import annotations

import json
from enum import StrEnum

from redis.asyncio import Redis

from shared.keys import Keys


class Outcome(StrEnum):
    PENDING = "pending"
    CREATED = "created"
    DUPLICATE = "duplicate"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


class OutcomeField:
    STATUS = "status"
    FEEDBACK_ID = "feedback_id"
    REASON = "reason"
    ERROR = "error"
    DEAD_LETTER_ID = "dead_letter_id"


async def read_outcome(redis: Redis, keys: Keys, entry_id: str) -> dict[str, str] | None:
    recorded = await redis.hget(keys.event_outcomes(entry_id), entry_id)
    return {k: str(v) for k, v in json.loads(recorded).items()} if recorded else None
