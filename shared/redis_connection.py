"""Redis clients for every process, built one way."""

from __future__ import annotations

import contextlib
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared.settings import Settings

RETRIES = 3
"""After a Redis restart every pooled connection is stale and fails its first command; the first
retry runs on a fresh connection. The later ones, with backoff, ride out a server still starting."""


def connect(settings: Settings) -> Redis:
    """A client for `redis://`, `rediss://` or `unix://` URLs; with `REDIS_CLUSTER`, a cluster client.

    The socket timeout must outlast the longest blocking read (`XREADGROUP BLOCK`), or an idle
    stream would look like a dead server; it is raised to fit when configured too low.

    The pool blocks: a burst of more concurrent commands than `REDIS_MAX_CONNECTIONS` waits for a
    free connection instead of failing (the default pool raises `MaxConnectionsError`, a 503).

    The retry must be the asyncio `Retry`: the synchronous one is accepted silently by the asyncio
    client but returns the coroutine before it fails, so nothing is ever retried (redis-py #4262).
    """
    socket_timeout = max(settings.redis_socket_timeout_seconds, settings.read_block_ms / 1000 + 5)
    options = _client_options(settings, socket_timeout)
    if settings.redis_cluster:
        return connect_cluster(settings, options)
    pool = BlockingConnectionPool.from_url(
        settings.redis_url, timeout=settings.redis_pool_timeout_seconds, **options
    )
    return Redis.from_pool(pool)


def _client_options(settings: Settings, socket_timeout: float) -> dict[str, Any]:
    """What both kinds of client share: decoding, timeouts, health checks and retries."""
    return {
        "max_connections": settings.redis_max_connections,
        "decode_responses": True,
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": 5,
        "health_check_interval": 30,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=RETRIES),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
    }


def connect_cluster(settings: Settings, options: dict[str, Any]) -> Redis:
    """redis-py's cluster client, from any node's URL: it learns the slot map and follows `MOVED`
    and `ASK` through a reshard. `REDIS_MAX_CONNECTIONS` applies per node.

    Typed as `Redis`: the cluster client speaks the same commands, routed by key. The few places
    that differ (a raw packed command, a binary twin, a multi-key read) ask `is_cluster` first.
    """
    return cast(Redis, RedisCluster.from_url(settings.redis_url, **options))


def is_cluster(redis: Redis) -> bool:
    return isinstance(redis, RedisCluster)


async def learn_slot_map(redis: Redis) -> None:
    """Let a cluster client learn its slot map before a process's tasks share it.

    redis-py's cluster client initializes on first use and then replaces its startup nodes,
    disconnecting their connections: a second task's first command on one of them then fails with
    an `AttributeError` nothing retries (seen with six consumers starting at once). Learning the map
    first, alone, avoids that. A cluster not reachable yet is left to the first command's retries.
    """
    if isinstance(redis, RedisCluster):
        with contextlib.suppress(RedisConnectionError, RedisTimeoutError, RedisClusterException):
            await redis.initialize()


def binary_twin(redis: Redis) -> Redis:
    """A client on the same server (or cluster) whose replies stay bytes: raw float32 vectors."""
    if isinstance(redis, RedisCluster):
        # Before its first command a cluster client knows only its startup nodes.
        known = redis.get_nodes() or list(redis.nodes_manager.startup_nodes.values())
        nodes = [ClusterNode(node.host, node.port) for node in known]
        kwargs = redis.get_connection_kwargs()
        twin = RedisCluster(
            startup_nodes=nodes,
            decode_responses=False,
            socket_timeout=kwargs.get("socket_timeout"),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
        )
        return cast(Redis, twin)
    pool = redis.connection_pool
    kwargs = {**pool.connection_kwargs, "decode_responses": False}
    return Redis(connection_pool=ConnectionPool(connection_class=pool.connection_class, **kwargs))
