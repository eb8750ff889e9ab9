"""Feedback items written the way the ingest worker leaves them: hash, unclustered, new-item event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from redis.asyncio import Redis

from shared.keys import SCHEMA_VERSION, Keys, NewItemField
from shared.models import FeedbackItem, item_id_for


async def seed_items(
    redis: Redis, keys: Keys, titles: Sequence[str], source: str = "manual", publish: bool = True
) -> list[str]:
    """Returns the new item ids in order; `publish=False` leaves them without an event. Each item
    goes to its partition's set and stream (one pipeline, not a transaction: the keys of several
    partitions may live on several nodes)."""
    ids: list[str] = []
    async with redis.pipeline(transaction=False) as pipe:
        for title in titles:
            item_id = item_id_for(source, f"ext-{len(ids)}-{title}", "")
            item = FeedbackItem(id=item_id, source=source, title=title, created_at=datetime.now(UTC))
            pipe.hset(keys.feedback(item_id), mapping=item.to_hash())  # type: ignore[arg-type]
            partition = keys.for_item(item_id)
            pipe.sadd(partition.unclustered, item_id)
            if publish:
                event = {
                    NewItemField.VERSION: SCHEMA_VERSION,
                    NewItemField.ID: item_id,
                    NewItemField.SOURCE: source,
                    NewItemField.CREATED_AT: item.created_at.isoformat(),
                }
                pipe.xadd(partition.new_item_stream, event)  # type: ignore[arg-type]
            ids.append(item_id)
        await pipe.execute()
    return ids


TOPICS = (
    "login page crashes with error 500 after password reset on {}",
    "dark mode toggle does not persist the theme setting on {}",
    "export to csv produces an empty spreadsheet file on {}",
)
DEVICES = ("android", "iphone", "windows laptop", "macbook", "linux desktop")


def topic_titles() -> list[str]:
    """Three clearly separate issues, five paraphrase-free reports each, interleaved."""
    return [topic.format(device) for device in DEVICES for topic in TOPICS]
