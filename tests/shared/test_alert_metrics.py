"""The gauges the alerting rules read are really set: breaker state, oldest pending age, heartbeat
age beside its threshold, and the unclustered backlog (sampled by the API's /metrics)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import httpx
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from shared.consumer import (
    ConsumerConfig,
    DeadLetterPolicy,
    Failures,
    GroupKeys,
    ReadPolicy,
    RetryPolicy,
    StreamConsumer,
    StreamMessage,
)
from shared.health_server import HealthServer
from shared.keys import Keys
from shared.settings import Settings
from tests.support.pipeline import running_pipeline


def config_for(stream: str) -> ConsumerConfig:
    """Entries stay pending: a long visibility timeout, no reclaim and no dead letter in the test."""
    group = "alerts"
    return ConsumerConfig(
        stream=stream,
        group=group,
        consumer="c1",
        keys=GroupKeys(
            errors=f"{stream}:errors:{group}",
            paused=f"{stream}:paused:{group}",
            heartbeat=f"{stream}:heartbeat:{group}:c1",
        ),
        dead_letter=DeadLetterPolicy(f"{stream}:dlq"),
        read=ReadPolicy(batch_size=10, block_ms=50),
        retry=RetryPolicy(
            visibility_timeout_ms=60_000,
            max_backoff_ms=60_000,
            max_deliveries=100,
            reclaim_interval_ms=60_000,
        ),
    )


async def gauge_reaches(name: str, labels: dict[str, str], minimum: float, consumer: StreamConsumer) -> float:
    """Run the consumer until the gauge is at least `minimum`; returns the value seen."""
    task = asyncio.create_task(consumer.run())
    try:
        deadline = time.monotonic() + 10
        while (value := REGISTRY.get_sample_value(name, labels)) is None or value < minimum:
            assert time.monotonic() < deadline, f"{name}{labels} = {value}"
            assert not task.done()
            await asyncio.sleep(0.05)
        return value
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 5)


async def never_succeeds(messages: Sequence[StreamMessage]) -> Failures:
    return {message.id: RuntimeError("provider down") for message in messages}


async def test_the_breaker_state_is_a_gauge(redis: Redis) -> None:
    config = config_for("alerts:paused")
    await redis.set(config.keys.paused, "test: paused by hand")
    labels = {"stream": config.stream, "group": config.group}
    consumer = StreamConsumer(redis, config, never_succeeds)
    assert await gauge_reaches("soulcaster_stream_group_paused", labels, 1, consumer) == 1


async def test_the_oldest_pending_entry_age_is_a_gauge(redis: Redis) -> None:
    config = config_for("alerts:pending")
    ten_minutes_ago = int(time.time() * 1000) - 600_000
    await redis.xadd(config.stream, {"n": "1"}, id=f"{ten_minutes_ago}-0")
    labels = {"stream": config.stream, "group": config.group}
    consumer = StreamConsumer(redis, config, never_succeeds)
    age = await gauge_reaches("soulcaster_stream_group_oldest_pending_age_seconds", labels, 1, consumer)
    assert 590 < age < 700


async def test_the_heartbeat_age_and_its_threshold_are_gauges() -> None:
    server = HealthServer("127.0.0.1", 0, lambda: time.monotonic() - 100, 60.0)
    await server.start()
    try:
        age = REGISTRY.get_sample_value("soulcaster_heartbeat_age_seconds")
        assert age is not None and age > 99
        assert REGISTRY.get_sample_value("soulcaster_heartbeat_stale_after_seconds") == 60
    finally:
        await server.close()


async def test_the_api_metrics_report_the_unclustered_backlog(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    await redis.sadd(keys.unclustered, "a", "b", "c")
    with running_pipeline(settings, api=True) as pipeline:
        async with httpx.AsyncClient(base_url=pipeline.api_url) as api:
            body = (await api.get("/metrics")).text
    assert "soulcaster_unclustered_items 3.0" in body.splitlines()
