"""Running one consumer as a process's main job, the same way for every worker."""

from __future__ import annotations

import gc
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from shared.consumer.runtime import StreamConsumer, run_until_stopped
from shared.health_server import start_health_server
from shared.settings import Settings

log = logging.getLogger(__name__)


async def serve_worker(settings: Settings, redis: Redis, consumer: StreamConsumer) -> None:
    """Health and metrics on `HEALTH_PORT`, the consumer loop until SIGTERM, then a clean close."""

    async def redis_reachable() -> bool:
        try:
            return bool(await redis.ping())
        except (RedisError, OSError):
            return False

    health = await start_health_server(
        settings, lambda: consumer.last_beat, settings.heartbeat_stale_seconds, ready=redis_reachable
    )
    log.info("health endpoint listening", extra={"port": health.port})
    # What exists by now (imported modules, settings, clients) lives as long as the process: frozen,
    # the collector stops walking it on every full collection a busy consumer loop triggers.
    gc.freeze()
    try:
        await run_until_stopped(consumer)
    finally:
        await health.close()
        await redis.aclose()
