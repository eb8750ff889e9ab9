"""Events per second through one ingest worker, beside a naive baseline measured in the same run.

The baseline has the original store's shape: one entry per read, then GET the dedupe key and one
command per key (HSET, 2 ZADD, SADD, SET, XADD) and an XACK: nine round trips per event. Ours is
the production worker (batched reads, one Lua call per batch, one XACK per batch) run in-process.
Each run gets a fresh redis-server; runs are interleaved and the median is printed.

    .venv/bin/python -m bench.ingest_worker [--events 50000] [--baseline-events 5000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import redis
from redis.asyncio import Redis

from services.dev.local_redis import RedisServer
from services.ingest.normalized import EventContext, Normalized
from services.ingest.normalizers import NORMALIZERS
from services.ingest.worker import build_ingest_consumer, received_at
from shared.consumer import StreamMessage
from shared.keys import INGEST_GROUP, Keys
from shared.publisher import IngestPublisher, RawEvent
from shared.settings import Settings

BODY = "When I export a report with more than 1000 rows the download stalls and the tab freezes. " * 3


def workload(count: int) -> list[RawEvent]:
    return [
        RawEvent.from_json(
            "feedback",
            {"source": "manual", "external_id": f"ext-{i}", "title": f"Export stalls #{i}", "body": BODY},
        )
        for i in range(count)
    ]


async def load(url: str, events: list[RawEvent]) -> None:
    client = Redis.from_url(url, decode_responses=True)
    publisher = IngestPublisher(client, Keys(), producer="bench")
    for start in range(0, len(events), 1000):
        await publisher.publish_many(events[start : start + 1000])
    await client.xgroup_create(Keys().ingest_stream, INGEST_GROUP, id="0")
    await client.aclose()


def check(url: str, expected: int) -> None:
    client = redis.Redis.from_url(url, decode_responses=True)
    keys = Keys()
    counts = (
        client.zcard(keys.feedback_created),
        client.scard(keys.unclustered),
        client.xlen(keys.new_item_stream),
        client.xpending(keys.ingest_stream, INGEST_GROUP)["pending"],
    )
    client.close()
    assert counts == (expected, expected, expected, 0), f"wrong end state {counts}"


async def run_worker(url: str, count: int) -> float:
    settings = Settings(redis_url=url, consumer_name="bench", ingest_batch_size=500, read_block_ms=100)
    client = Redis.from_url(url, decode_responses=True)
    consumer = build_ingest_consumer(settings, client, Keys())
    task = asyncio.create_task(consumer.run())
    started = time.perf_counter()
    while True:
        await asyncio.sleep(0.01)
        [group] = await client.xinfo_groups(Keys().ingest_stream)
        if group["lag"] == 0 and group["pending"] == 0:
            break
    elapsed = time.perf_counter() - started
    consumer.stop()
    await task
    await client.aclose()
    return count / elapsed


def run_naive(url: str, count: int) -> float:
    client = redis.Redis.from_url(url, decode_responses=True)
    keys = Keys()
    normalize = NORMALIZERS["feedback"]
    started = time.perf_counter()
    for _ in range(count):
        [[_, [(entry_id, fields)]]] = client.xreadgroup(
            INGEST_GROUP, "naive", {keys.ingest_stream: ">"}, count=1
        )
        message = StreamMessage(entry_id, fields)
        result = normalize(json.loads(fields["payload"]), EventContext(entry_id, received_at(message)))
        assert isinstance(result, Normalized)
        item = result.item
        external = keys.feedback_external(item.source, str(item.external_id))
        if client.get(external) is None:
            score = item.created_at.timestamp()
            client.hset(keys.feedback(item.id), mapping=item.to_hash())
            client.zadd(keys.feedback_created, {item.id: score})
            client.zadd(keys.feedback_source(item.source), {item.id: score})
            client.sadd(keys.unclustered, item.id)
            client.set(external, item.id)
            client.xadd(keys.new_item_stream, {"v": "1", "id": item.id, "source": item.source})
        client.xack(keys.ingest_stream, INGEST_GROUP, entry_id)
    elapsed = time.perf_counter() - started
    client.close()
    return count / elapsed


def measure(kind: str, count: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder)).start()
        try:
            asyncio.run(load(server.url, workload(count)))
            rate = (
                asyncio.run(run_worker(server.url, count))
                if kind == "worker"
                else run_naive(server.url, count)
            )
            check(server.url, count)
            return rate
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--baseline-events", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"naive": [], "worker": []}
    for _ in range(args.runs):
        rates["naive"].append(measure("naive", args.baseline_events))
        rates["worker"].append(measure("worker", args.events))
    naive, ours = statistics.median(rates["naive"]), statistics.median(rates["worker"])
    print(f"{'consumer':<10} {'events':>8} {'median ev/s':>12}  runs (ev/s)")
    for name, count, rate in (("naive", args.baseline_events, naive), ("worker", args.events, ours)):
        runs = ", ".join(f"{r:,.0f}" for r in rates[name])
        print(f"{name:<10} {count:>8} {rate:>12,.0f}  {runs}")
    print(f"ratio worker / naive: {ours / naive:.1f}x")


if __name__ == "__main__":
    main()
