"""Feedback items written straight into their partitions, as the ingest script leaves them.

Reads that span partitions are tested on data whose layout is known: each item's hash, its place in
its partition's `feedback:created` and `feedback:source:{s}`, the partition's sources set and
unclustered set. Several items share a creation time, so the (score, id) order is exercised on ties
that straddle partitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from shared.keys import Keys
from shared.models import FeedbackItem, item_id_for

SOURCES = ("reddit", "github", "sentry")
START = datetime(2026, 11, 1, tzinfo=UTC)


def sample_items(count: int = 40) -> list[FeedbackItem]:
    """`count` items over three sources; every third shares its creation time with the next."""
    items = []
    for n in range(count):
        source = SOURCES[n % len(SOURCES)]
        created = START + timedelta(minutes=n - n % 3 // 2)
        item_id = item_id_for(source, f"ext-{n}", "")
        items.append(FeedbackItem(id=item_id, source=source, title=f"item {n}", created_at=created))
    return items


async def write_items(redis: Redis, keys: Keys, items: Sequence[FeedbackItem], unclustered: int = 0) -> None:
    """Each item in its own partition; the first `unclustered` also wait for clustering."""
    async with redis.pipeline(transaction=False) as pipe:
        for number, item in enumerate(items):
            part = keys.for_item(item.id)
            score = item.created_at.timestamp()
            pipe.hset(part.feedback(item.id), mapping=item.to_hash())  # type: ignore[arg-type]
            pipe.zadd(part.feedback_created, {item.id: score})
            pipe.zadd(part.feedback_source(item.source), {item.id: score})
            pipe.sadd(part.feedback_sources, item.source)
            if number < unclustered:
                pipe.sadd(part.unclustered, item.id)
        await pipe.execute()
