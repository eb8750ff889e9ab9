"""Running one consumer as a process's main job, the same way for every worker."""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.consumer.runtime import StreamConsumer, run_until_stopped
from shared.health_server import start_health_server
from shared.redis_connection import learn_slot_map
from shared.settings import Settings

log = logging.getLogger(__name__)


async def serve_worker(settings: Settings, redis: Redis, consumers: Sequence[StreamConsumer]) -> None:
    """Health and metrics on `HEALTH_PORT`, the consumer loops until SIGTERM, then a clean close.

    The process is alive while its least recent consumer beats: one stuck partition is a stuck pod."""

    async def redis_reachable() -> bool:
        try:
            return bool(await redis.ping())
        except (RedisError, OSError):
            return False

    await learn_slot_map(redis)
    health = await start_health_server(
        settings,
        lambda: min(c.last_beat for c in consumers),
        settings.heartbeat_stale_seconds,
        ready=redis_reachable,
    )
    log.info("health endpoint listening", extra={"port": health.port})
    # What exists by now (imported modules, settings, clients) lives as long as the process: frozen,
    # the collector stops walking it on every full collection a busy consumer loop triggers.
    gc.freeze()
    try:
        await run_until_stopped(consumers)
    finally:
        await health.close()
        await redis.aclose()
