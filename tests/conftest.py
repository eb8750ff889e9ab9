"""Shared fixtures: a real Redis for every test, and settings pointed at it."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from services.dev.local_cluster import LocalRedisCluster
from services.dev.local_redis import RedisServer
from shared.keys import Keys
from shared.settings import Settings


def _docker_engine_up() -> bool:
    try:
        import docker  # type: ignore[import-untyped]

        return bool(docker.from_env(timeout=2).ping())
    except Exception:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    """A real Redis Cluster of 3 masters, one per test module: it takes seconds to form, so each
    test empties it (`cluster.flush()`) instead of starting its own."""
    local = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """TEST_REDIS_URL when given (it is flushed!), else a throwaway redis-server, else a container."""
    if url := os.environ.get("TEST_REDIS_URL"):
        yield url
    elif shutil.which("redis-server"):
        server = RedisServer(tmp_path_factory.mktemp("redis")).start()
        try:
            yield server.url
        finally:
            server.stop()
    elif _docker_engine_up():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7.0-alpine") as container:
            yield f"redis://{container.get_container_host_ip()}:{container.get_exposed_port(6379)}/0"
    else:
        pytest.fail("no Redis for tests: install redis-server (make setup) or run a Docker engine")


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture
def settings(redis_url: str) -> Settings:
    """Fast timings so retries, reclaims and shutdowns happen within a test's patience."""
    return Settings(
        redis_url=redis_url,
        consumer_name="test-consumer",
        read_block_ms=100,
        visibility_timeout_ms=200,
        max_backoff_ms=1000,
        reclaim_interval_ms=100,
        max_deliveries=3,
        embedder="hashing",
        health_port=0,
    )
