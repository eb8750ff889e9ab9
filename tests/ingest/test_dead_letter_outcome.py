"""Ingest's burial record: a dead-lettered event's outcome names its dead letter and expires."""

from __future__ import annotations

from redis.asyncio import Redis

from services.ingest.outcomes import read_outcome
from shared.keys import Keys
from shared.settings import Settings
from tests.ingest.test_ingest_worker import consumer_for, drain


async def test_dead_lettered_outcome_names_the_dead_letter_and_expires(
    redis: Redis, settings: Settings
) -> None:
    keys = Keys()
    bad = await redis.xadd(keys.ingest_stream, {"v": "1", "source": "note", "payload": "{not json"})
    await drain([consumer_for(settings, redis)], redis)

    [(dead_id, dead)] = await redis.xrange(keys.ingest_dlq)
    assert dead["original_id"] == bad
    outcome = await read_outcome(redis, keys, bad)
    assert outcome == {"status": "dead_lettered", "error": dead["error"], "dead_letter_id": dead_id}
    ttl = await redis.ttl(keys.event_outcomes(bad))
    assert 0 < ttl <= settings.event_outcome_ttl_seconds
