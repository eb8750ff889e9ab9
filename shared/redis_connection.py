"""Redis clients for every process, built one way."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.settings import Settings

RETRIES = 3
"""After a Redis restart every pooled connection is stale and fails its first command; the first
retry runs on a fresh connection. The later ones, with backoff, ride out a server still starting."""


def connect(settings: Settings) -> Redis:
    """A client for `redis://`, `rediss://` or `unix://` URLs.

    The socket timeout must outlast the longest blocking read (`XREADGROUP BLOCK`), or an idle
    stream would look like a dead server; it is raised to fit when configured too low.

    The pool blocks: a burst of more concurrent commands than `REDIS_MAX_CONNECTIONS` waits for a
    free connection instead of failing (the default pool raises `MaxConnectionsError`, a 503).

    The retry must be the asyncio `Retry`: the synchronous one is accepted silently by the asyncio
    client but returns the coroutine before it fails, so nothing is ever retried (redis-py #4262).
    """
    socket_timeout = max(settings.redis_socket_timeout_seconds, settings.read_block_ms / 1000 + 5)
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_seconds,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return Redis.from_pool(pool)
