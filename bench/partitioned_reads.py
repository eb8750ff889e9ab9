"""What reading across partitions costs: the read endpoints at 1, 3 and 12 partitions.

The real app in process (httpx over ASGI, no network hop for HTTP), against a throwaway
redis-server or, with `--cluster`, a local 3-master Redis Cluster (tests/support/redis_cluster.py).
Items are written straight into their partitions' hashes and indexes. Each endpoint is requested
`--requests` times, one at a time; the table gives the median and 90th percentile in milliseconds.

Run: `nice .venv/bin/python -m bench.partitioned_reads [--cluster]` (about a minute). With one
partition and no `--cluster` it runs on any checkout of the API, so it also times the code before
partitions: `PYTHONPATH=/path/to/older/checkout python bench/partitioned_reads.py --partitions 1`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.api.app import create_app
from shared.keys import Keys
from shared.models import FeedbackItem, item_id_for
from shared.settings import Settings

SOURCES = ("reddit", "github", "sentry", "manual")


async def seed(redis: Any, keys: Keys, count: int) -> list[str]:
    """`count` items, one a second, written as the ingest script leaves them; returns their ids."""
    per_item = getattr(keys, "for_item", lambda item_id: keys)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    ids = []
    for first in range(0, count, 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(first, min(first + 1000, count)):
                source = SOURCES[n % len(SOURCES)]
                item = FeedbackItem(
                    id=item_id_for(source, f"ext-{n}", ""),
                    source=source,
                    title=f"item {n}",
                    body="words " * 20,
                    created_at=start + timedelta(seconds=n),
                )
                part, score = per_item(item.id), item.created_at.timestamp()
                pipe.hset(part.feedback(item.id), mapping=item.to_hash())
                pipe.zadd(part.feedback_created, {item.id: score})
                pipe.zadd(part.feedback_source(source), {item.id: score})
                pipe.sadd(part.feedback_sources, source)
                pipe.sadd(part.unclustered, item.id)
                ids.append(item.id)
            await pipe.execute()
    return ids


async def timed(call: Callable[[], Awaitable[httpx.Response]], requests: int) -> tuple[float, float]:
    samples = []
    for _ in range(requests):
        began = time.perf_counter()
        response = await call()
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code in (200, 404), (response.request.url, response.text)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9)]


async def measure(settings: Settings, items: int, requests: int) -> dict[str, tuple[float, float]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        redis = app.state.resources.redis
        ids = await seed(redis, settings.keys(), items)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
            offset = {"limit": "50", "offset": str(items // 5)}
            after = (await api.get("/feedback", params=offset)).json()["next_cursor"]
            cursor = {"limit": "50", "cursor": after}
            calls: dict[str, Callable[[], Awaitable[httpx.Response]]] = {
                "/feedback first page": lambda: api.get("/feedback", params={"limit": "50"}),
                "/feedback cursor page": lambda: api.get("/feedback", params=cursor),
                "/feedback offset items/5": lambda: api.get("/feedback", params=offset),
                "/feedback?source": lambda: api.get("/feedback", params={"limit": "50", "source": "github"}),
                "/feedback/{id}": lambda: api.get(f"/feedback/{ids[7]}"),
                "/stats": lambda: api.get("/stats"),
                "/ingest/events/{id} unknown": lambda: api.get("/ingest/events/1767312000000-0"),
            }
            return {name: await timed(call, requests) for name, call in calls.items()}


async def flush(url: str, cluster: bool) -> None:
    from redis.asyncio import Redis

    if cluster:
        from redis.asyncio.cluster import RedisCluster

        client: Any = RedisCluster.from_url(url)
        await client.flushall(target_nodes=RedisCluster.PRIMARIES)
    else:
        client = Redis.from_url(url)
        await client.flushall()
    await client.aclose()


async def run(url: str, cluster: bool, counts: list[int], items: int, requests: int) -> None:
    results = {}
    for count in counts:
        await flush(url, cluster)
        update: dict[str, Any] = {"redis_url": url, "ingest_partitions": count}
        if cluster:
            update["redis_cluster"] = True
        settings = Settings().model_copy(update=update)
        results[count] = await measure(settings, items, requests)
    where = "3-master local cluster" if cluster else "one redis-server"
    load = os.getloadavg()[0]
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC  {items:,} items on {where}; {requests} requests each, "
        f"one at a time; ms median / p90; load average {load:.1f}"
    )
    header = f"{'endpoint':<30}" + "".join(f"{f'N={count}':>16}" for count in counts)
    print(header)
    print("-" * len(header))
    for name in results[counts[0]]:
        cells = "".join(f"{results[c][name][0]:>8.2f} /{results[c][name][1]:>6.2f}" for c in counts)
        print(f"{name:<30}{cells}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, nargs="+", default=[1, 3, 12])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cluster", action="store_true", help="a local 3-master Redis Cluster")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-partitioned-reads-"))
    if args.cluster:
        from tests.support.redis_cluster import LocalRedisCluster

        server: Any = LocalRedisCluster(folder).start()
    else:
        from services.dev.local_redis import RedisServer

        server = RedisServer(folder).start()
    try:
        asyncio.run(run(server.url, args.cluster, args.partitions, args.items, args.requests))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
