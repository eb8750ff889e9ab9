"""One meaning of "drained" for every test that waits for consumers to finish their work.

A consumer group is drained when it has read every entry of its stream (lag 0) and acked every
entry it read (nothing pending); a stream or group that does not exist yet is not drained. The
clusterer is drained when, besides, no item is left in the unclustered set; with several
partitions, every partition's stream and set.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from redis.asyncio import Redis

from shared.keys import CLUSTERER_GROUP, INGEST_GROUP, Keys

T = TypeVar("T")


async def group_drained(redis: Redis, stream: str, group: str) -> bool:
    if not await redis.exists(stream):
        return False
    for state in await redis.xinfo_groups(stream):
        name = state["name"]
        if (name.decode() if isinstance(name, bytes) else name) == group:
            return bool(state["lag"] == 0 and state["pending"] == 0)
    return False


async def ingested(redis: Redis, keys: Keys) -> bool:
    """The ingest group has handled every entry of every partition's ingest stream."""
    for stream in keys.ingest_streams:
        if not await group_drained(redis, stream, INGEST_GROUP):
            return False
    return True


async def drained(redis: Redis, keys: Keys, *, through_ingest: bool = False) -> bool:
    """The clusterer has clustered every new item; `through_ingest` first asks the same of ingest."""
    if through_ingest and not await ingested(redis, keys):
        return False
    for partition in keys.partitions:
        if not await group_drained(redis, partition.new_item_stream, CLUSTERER_GROUP):
            return False
        if await redis.scard(partition.unclustered):
            return False
    return True


def run_with_redis(redis_url: str, check: Callable[[Redis], Awaitable[T]]) -> T:
    """One async check on a fresh connection, for sync code (a sync test, a thread, a blocking helper
    called from an async test: then the check runs on a thread of its own, with its own loop)."""

    async def run() -> T:
        client = Redis.from_url(redis_url, decode_responses=True)
        try:
            return await check(client)
        finally:
            await client.aclose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, run()).result()
