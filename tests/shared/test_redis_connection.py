"""Every process's Redis client survives a dropped connection: its retry is the asyncio one."""

from __future__ import annotations

import gc
import warnings

from redis.asyncio import Redis

from shared.redis_connection import connect
from shared.settings import Settings


async def test_a_killed_connection_is_retried_on_a_fresh_one_and_nothing_is_left_unawaited(
    settings: Settings, redis: Redis
) -> None:
    client = connect(settings)
    try:
        assert await client.ping()
        await redis.client_kill_filter(_type="normal", skipme=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert await client.ping(), "the stale connection's failure is retried on a new one"
            gc.collect()
        assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    finally:
        await client.aclose()
