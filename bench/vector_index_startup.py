"""How long a clusterer replica's vector index takes to start, and what it answers (issue 13).

    OPENBLAS_NUM_THREADS=2 nice .venv/bin/python -m bench.vector_index_startup --size 100000

One throwaway redis-server, the synthetic corpus of bench/vector_index_ann.py (384-d unit vectors
around 3,000 topics), the product's `RedisVectorIndex`. Two vector logs are written in batches of
64, as the clusterer writes them:
- a full log with no snapshot, replayed by (a) today's behaviour (`VECTOR_ANN_MIN` above the size:
  exact rows, the whole log) and (a') the product's defaults without a snapshot (the whole log
  into the HNSW graph), each measured in this run;
- per `--tails` value T, a log whose writer (the product's defaults) wrote size - T items and
  snapshotted last at their end, then T more items by a writer that snapshots no more, started by
  (b) loading the snapshot and replaying the T-item tail.
Each replica starts in a fresh process. For each: seconds until it has caught up, its RSS then and
its peak, the Redis memory of that index's keys, the median time of one query batch of 64, and
recall@10 against the exact top 10 of the same queries.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import multiprocessing
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

from bench.clusterer_run import throwaway_redis
from bench.vector_index_ann import BATCH, DIMENSIONS, TOP_K, exact_top, recall_at_k, synthetic
from services.clusterer.vector_index.base import VectorRecord
from services.clusterer.vector_index.local_copy import IndexTuning
from services.clusterer.vector_index.redis_index import RedisVectorIndex, SnapshotPolicy
from services.clusterer.vector_index.snapshots import SnapshotStore
from shared.keys import Keys
from shared.redis_connection import binary_twin
from shared.settings import Settings

NEVER = 10**12
KEYS = Keys()


@dataclass(frozen=True)
class Start:
    how: str
    replayed: int  # items read from the log after the snapshot (all of them without one)
    start_s: float
    rss_mb: float  # the replica process once started (Python, numpy and hnswlib included)
    peak_mb: float  # its peak while starting (a snapshot's bytes and the copy built from them)
    redis_mb: float
    batch_ms: float
    recall: float


def product_tuning() -> IndexTuning:
    """The settings' values (their defaults unless VECTOR_* variables are set)."""
    settings = Settings()
    return IndexTuning(ann_min=settings.vector_ann_min, search_ef=settings.vector_search_ef)


async def write_log(base: np.ndarray, writer: RedisVectorIndex, first: int = 0) -> str:
    """Upserts in batches of 64, as the clusterer does. The slowest upsert is the one that built
    the graph at VECTOR_ANN_MIN or wrote a snapshot (both happen inside an upsert)."""
    began = time.perf_counter()
    slowest = 0.0
    for start in range(0, len(base), BATCH):
        rows = base[start : start + BATCH]
        upserted = time.perf_counter()
        await writer.upsert(
            [
                VectorRecord(f"i{first + start + n}", v, f"c{(first + start + n) % 97}")
                for n, v in enumerate(rows)
            ]
        )
        slowest = max(slowest, time.perf_counter() - upserted)
    return f"written in {time.perf_counter() - began:.1f} s, slowest upsert of 64 {slowest:.2f} s"


async def redis_mb(redis: Redis, name: str) -> float:
    """The index's keys in Redis: its log, and its snapshot's manifest and chunks."""
    total = 0
    async for key in redis.scan_iter(match=f"{KEYS.vectors(name)}*"):
        total += await redis.memory_usage(key, samples=0) or 0
    return total / 2**20


def process_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, from /proc (the platform is Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def start_replica(
    url: str, how: str, name: str, tuning: IndexTuning, queries: np.ndarray, truth: np.ndarray
) -> Start:
    """Runs in a fresh process, so its memory is one replica's and nothing else's."""
    return asyncio.run(_start_replica(url, how, name, tuning, queries, truth))


async def _start_replica(
    url: str, how: str, name: str, tuning: IndexTuning, queries: np.ndarray, truth: np.ndarray
) -> Start:
    redis = binary_twin(Redis.from_url(url))
    began = time.perf_counter()
    replica = RedisVectorIndex(redis, KEYS, name, DIMENSIONS, tuning, SnapshotPolicy(every=NEVER))
    await replica.sync()
    start_s = time.perf_counter() - began
    rss, peak = process_mb("VmRSS"), process_mb("VmHWM")
    found: list[list[int]] = []
    times: list[float] = []
    for first in range(0, len(queries), BATCH):
        began = time.perf_counter()
        rows = await replica.query(queries[first : first + BATCH], TOP_K)
        times.append(time.perf_counter() - began)
        found.extend([int(m.id[1:]) for m in row] for row in rows)
    snapshot = await SnapshotStore(redis, KEYS, name).manifest()
    replayed = len(replica) - (snapshot.count if snapshot else 0)  # each item is upserted once here
    stored = await redis_mb(redis, name)
    await redis.aclose()
    batch_ms = float(np.median(times) * 1000)
    return Start(how, replayed, start_s, rss, peak, stored, batch_ms, recall_at_k(np.array(found), truth))


async def replica_process(
    url: str, how: str, name: str, tuning: IndexTuning, queries: np.ndarray, truth: np.ndarray
) -> Start:
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        started = pool.submit(start_replica, url, how, name, tuning, queries, truth)
        return await asyncio.wrap_future(started)


def print_table(starts: list[Start], writers: list[str], heading: str) -> None:
    print(heading)
    header = (
        f"{'start-up':<42} {'replayed':>9} {'start s':>8} {'vs (a)':>7} {'RSS MB':>7} {'peak MB':>8} "
        f"{'Redis MB':>9} {'ms/64q':>7} {'recall@10':>9}"
    )
    print(header)
    print("-" * len(header))
    today = starts[0].start_s
    for s in starts:
        print(
            f"{s.how:<42} {s.replayed:>9,} {s.start_s:>8.2f} {s.start_s / today:>6.2f}x {s.rss_mb:>7.0f} "
            f"{s.peak_mb:>8.0f} {s.redis_mb:>9.0f} {s.batch_ms:>7.1f} {s.recall:>9.3f}"
        )
    print(f"(vs (a): start-up time over (a)'s; load average at the end {os.getloadavg()[0]:.1f})")
    for line in writers:
        print(line)


def snapshot_at(items: int, tuning: IndexTuning) -> SnapshotPolicy:
    """A policy whose writer of `items` items snapshots last at its end: it also snapshots once
    when its graph is built, at the first batch reaching VECTOR_ANN_MIN."""
    built = -(-tuning.ann_min // BATCH) * BATCH
    return SnapshotPolicy(every=items - built if items > built else NEVER)


async def run(url: str, size: int, tails: list[int], graph_replay: bool) -> tuple[list[Start], list[str]]:
    tuning = product_tuning()
    base, queries = synthetic(size, 640, 3000)
    truth = np.concatenate([exact_top(base, queries[i : i + BATCH]) for i in range(0, len(queries), BATCH)])
    redis = binary_twin(Redis.from_url(url))
    exact = IndexTuning(ann_min=NEVER)
    writer = RedisVectorIndex(redis, KEYS, "full", DIMENSIONS, exact, SnapshotPolicy(every=NEVER))
    writers = [f"full log (exact writer, no snapshot) {await write_log(base, writer)}"]
    print(f"  {writers[-1]}", flush=True)
    del writer
    starts = [await replica_process(url, "(a) full log, exact (today)", "full", exact, queries, truth)]
    if graph_replay:
        how = "(a') full log into the graph, no snapshot"
        starts.append(await replica_process(url, how, "full", tuning, queries, truth))
    for tail in tails:
        name, head = f"tail-{tail}", size - tail
        writer = RedisVectorIndex(redis, KEYS, name, DIMENSIONS, tuning, snapshot_at(head, tuning))
        written = await write_log(base[:head], writer)
        del writer
        # The tail by a writer that snapshots no more, so the last snapshot stays at `head`.
        writer = RedisVectorIndex(redis, KEYS, name, DIMENSIONS, tuning, SnapshotPolicy(every=NEVER))
        writers.append(
            f"{name}: {head:,} items {written}; the tail {await write_log(base[head:], writer, head)}"
        )
        print(f"  {writers[-1]}", flush=True)
        del writer
        how = "(b) snapshot + the log after it"
        starts.append(await replica_process(url, how, name, tuning, queries, truth))
    await redis.aclose()
    return starts, writers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument(
        "--tails", type=int, nargs="+", default=[0, 20_000], help="items written after the snapshot"
    )
    parser.add_argument(
        "--no-graph-replay", action="store_true", help="skip (a'): the whole log into the graph"
    )
    args = parser.parse_args()
    tuning = product_tuning()
    heading = (
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC  {platform.node()}  "
        f"{args.size:,} x {DIMENSIONS} float32 (synthetic, 3000 topics); 640 queries in batches of "
        f"{BATCH}; top {TOP_K}; VECTOR_ANN_MIN={tuning.ann_min} VECTOR_SEARCH_EF={tuning.search_ef}; "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start"
    )
    print(heading, flush=True)
    with throwaway_redis() as url:
        starts, writers = asyncio.run(run(url, args.size, args.tails, not args.no_graph_replay))
    print_table(starts, writers, heading)


if __name__ == "__main__":
    main()
