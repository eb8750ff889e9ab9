"""A Redis restart, for real: stale pooled connections must not fail requests, and a worker batch cut
off by the restart is handled again as soon as Redis is back, not a visibility timeout later."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis

from services.api.app import create_app
from services.dev.local_redis import RedisServer
from services.ingest.normalized import EventContext, NormalizeResult
from services.ingest.normalizers import NORMALIZERS
from services.ingest.outcomes import read_outcome
from services.ingest.worker import build_ingest_consumer
from shared.keys import INGEST_GROUP, Keys
from shared.publisher import IngestPublisher, RawEvent
from shared.redis_connection import connect
from shared.settings import Settings

TEN_MINUTES_MS = 600_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own (AOF on, so streams and pending lists survive its restart)."""
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    try:
        yield server
    finally:
        server.stop()


def connected_clients(server: RedisServer) -> int:
    with sync_redis.Redis.from_url(server.url) as client:
        return int(client.info("clients")["connected_clients"])


async def test_a_burst_after_a_redis_restart_gets_no_503(server: RedisServer) -> None:
    app = create_app(Settings(redis_url=server.url, health_port=0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:

            async def burst(count: int, label: str) -> Counter[int]:
                replies = await asyncio.gather(
                    *[client.post("/ingest/manual", json={"text": f"{label} {i}"}) for i in range(count)]
                )
                return Counter(reply.status_code for reply in replies)

            assert await burst(100, "before") == {202: 100}
            assert connected_clients(server) > 10, "the pool must hold many connections to go stale"
            await asyncio.to_thread(server.restart)  # returns once the new server answers PING
            assert await burst(500, "after") == {202: 500}


def stop_on_first_call(server: RedisServer, stopped: threading.Event) -> Any:
    """The manual normalizer, except that its first call stops Redis: the batch's write then fails."""

    def normalize(payload: Any, context: EventContext) -> NormalizeResult:
        if not stopped.is_set():
            server.stop()
            stopped.set()
        return NORMALIZERS["manual"](payload, context)

    return normalize


async def test_a_batch_failed_by_a_restart_is_handled_again_before_any_visibility_timeout(
    server: RedisServer,
) -> None:
    settings = Settings(
        redis_url=server.url,
        consumer_name="w1",
        read_block_ms=100,
        visibility_timeout_ms=TEN_MINUTES_MS,
        reclaim_interval_ms=100,
        health_port=0,
    )
    keys = Keys()
    redis = connect(settings)
    stopped = threading.Event()
    consumer = build_ingest_consumer(settings, redis, keys, {"manual": stop_on_first_call(server, stopped)})
    publisher = IngestPublisher(redis, keys, producer="test")
    ids = await publisher.publish_many([RawEvent.from_json("manual", {"text": f"n {i}"}) for i in range(50)])
    task = asyncio.create_task(consumer.run())
    try:
        deadline = time.monotonic() + 30
        while not stopped.is_set():
            assert time.monotonic() < deadline and not task.done(), "the first batch never started"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # the batch's write fails against the stopped server
        await asyncio.to_thread(server.start)
        while True:
            outcomes = [await read_outcome(redis, keys, entry_id) for entry_id in ids]
            if all(outcome and outcome["status"] == "created" for outcome in outcomes):
                break
            assert not task.done(), f"consumer exited: {task.exception() if task.done() else ''}"
            assert time.monotonic() < deadline, "the failed batch waits for its visibility timeout"
            await asyncio.sleep(0.05)
        [group] = [g for g in await redis.xinfo_groups(keys.ingest_stream) if g["name"] == INGEST_GROUP]
        assert group["pending"] == 0
        assert await redis.xlen(keys.ingest_dlq) == 0
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)
        await redis.aclose()
