"""The set of sources that have items (`feedback:sources`), and its one-off backfill.

The write script adds an item's source to the set when it creates the item, so `/stats` reads one
small set instead of scanning every key. Each partition keeps its own set (beside its own source
indexes, in its slot); `/stats` reads their union. Items stored before the set existed (by the legacy
dashboard, or by an older version of this worker) are indexed once by `soulcaster index-sources`.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared.keys import Keys


async def backfill_sources(redis: Redis, keys: Keys) -> set[str]:
    """Add every source with a `feedback:source:{source}` index of the chosen partition to that
    partition's set: one SCAN (on a cluster, of every master), run once per partition."""
    prefix = keys.feedback_source("")
    found = {
        key[len(prefix) :] async for key in redis.scan_iter(match=f"{prefix}*", count=1000, _type="zset")
    }
    if found:
        await redis.sadd(keys.feedback_sources, *found)
    return found
