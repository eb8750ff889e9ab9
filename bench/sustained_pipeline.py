"""Sustained ingest throughput and end-to-end latency with 1, 2 and 4 ingest worker processes.

For each worker count, on a fresh redis-server:
- throughput: a backlog of events is drained by N `soulcaster ingest-worker` processes; events/s is
  the backlog over the time from the first to the last new-item event (server timestamps);
- latency: a publisher offers a fixed rate for a while; each event's latency is the new-item
  event's id time minus the ingest entry's id time (both stamped by the Redis server), i.e. from the
  moment a producer's append landed to the moment the item and its announcement were written.

    .venv/bin/python -m bench.sustained_pipeline [--backlog 60000] [--rate 3000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import redis
from redis.asyncio import Redis

from bench.ingest_worker import workload
from services.dev.local_redis import RedisServer
from shared.keys import INGEST_GROUP, Keys, NewItemField
from shared.publisher import IngestPublisher

KEYS = Keys()


def start_workers(
    url: str, count: int, logs: Path, settings: Mapping[str, str] | None = None
) -> list[subprocess.Popen[bytes]]:
    """`settings`: more environment for the workers (REDIS_CLUSTER, INGEST_PARTITIONS, ...)."""
    env = {**os.environ, "REDIS_URL": url, "HEALTH_PORT": "0", "READ_BLOCK_MS": "100", **(settings or {})}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "services.cli", "--log-level", "WARNING", "ingest-worker"],
            env={**env, "CONSUMER_NAME": f"bench-{i}"},
            stdout=(logs / f"worker-{i}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for i in range(count)
    ]


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(30)


def wait_drained(client: redis.Redis, expected: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while client.xlen(KEYS.new_item_stream) < expected:
        assert time.monotonic() < deadline, "workers did not drain the backlog"
        time.sleep(0.05)
    while client.xpending(KEYS.ingest_stream, INGEST_GROUP)["pending"]:
        time.sleep(0.05)


def entry_ms(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def latencies_ms(client: redis.Redis) -> list[int]:
    """Per item: new-item event time minus the ingest event time it came from."""
    values = []
    for entry_id, fields in client.xrange(KEYS.new_item_stream):
        values.append(entry_ms(entry_id) - entry_ms(fields[NewItemField.EVENT_ID]))
    return values


async def publish(url: str, count: int, rate: float | None) -> None:
    """All at once (rate None), or `rate` events per second in slices of 10 ms."""
    client = Redis.from_url(url, decode_responses=True)
    publisher = IngestPublisher(client, KEYS, producer="bench")
    events = workload(count)
    slice_size = 1000 if rate is None else max(int(rate / 100), 1)
    started = time.perf_counter()
    for sent in range(0, count, slice_size):
        await publisher.publish_many(events[sent : sent + slice_size])
        if rate is not None:
            ahead = (sent + slice_size) / rate - (time.perf_counter() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    await client.aclose()


def throughput(workers: int, backlog: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder) / "redis").start()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            asyncio.run(publish(server.url, backlog, None))
            client.xgroup_create(KEYS.ingest_stream, INGEST_GROUP, id="0")
            processes = start_workers(server.url, workers, Path(folder))
            wait_drained(client, backlog)
            stop(processes)
            first = client.xrange(KEYS.new_item_stream, count=1)[0][0]
            last = client.xrevrange(KEYS.new_item_stream, count=1)[0][0]
            return backlog / max((entry_ms(last) - entry_ms(first)) / 1000, 1e-3)
        finally:
            client.close()
            server.stop()


def latency(workers: int, rate: float, seconds: float) -> tuple[float, float, float]:
    count = int(rate * seconds)
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder) / "redis").start()
        client = redis.Redis.from_url(server.url, decode_responses=True)
        try:
            client.xgroup_create(KEYS.ingest_stream, INGEST_GROUP, id="0", mkstream=True)
            processes = start_workers(server.url, workers, Path(folder))
            time.sleep(1.5)  # let the workers start before the clock matters
            started = time.perf_counter()
            asyncio.run(publish(server.url, count, rate))
            offered = count / (time.perf_counter() - started)
            wait_drained(client, count)
            stop(processes)
            values = sorted(latencies_ms(client))
            return offered, statistics.median(values), values[int(len(values) * 0.99) - 1]
        finally:
            client.close()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=60_000)
    parser.add_argument("--rate", type=float, default=3_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    print(f"{'workers':>7}  {'drain ev/s':>10}  {'offered ev/s':>12}  {'p50 ms':>6}  {'p99 ms':>6}")
    for workers in args.workers:
        rate = throughput(workers, args.backlog)
        offered, p50, p99 = latency(workers, args.rate, args.seconds)
        print(f"{workers:>7}  {rate:>10,.0f}  {offered:>12,.0f}  {p50:>6.0f}  {p99:>6.0f}")


if __name__ == "__main__":
    main()
