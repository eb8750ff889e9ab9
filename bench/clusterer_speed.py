"""Clusterer throughput end to end against the embedder's own, and vector search time by index size.

    .venv/bin/python -m bench.clusterer_speed [--embedder hashing|minilm] [--items 2000]

1. The embedder alone on the Banking77 texts (its raw items/s), then the real clusterer (real
   Redis, batches of 64: hydrate, embed, lock, search, assign, write, labels) on the same texts.
   The goal is clusterer >= 80% of the embedder, i.e. clustering costs little beside embedding.
2. One batch query (64 vectors, top 10) on the Redis vector index at 10k and 100k random 384-d
   items, beside the bare numpy matrix product on the same matrix as the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np
from redis.asyncio import Redis

from bench.clusterer_run import BATCH, cluster_texts, throwaway_redis
from bench.labelled_sets import banking77
from services.clusterer.providers import build_embedder
from services.clusterer.vector_index.base import VectorRecord
from services.clusterer.vector_index.redis_index import RedisVectorIndex
from shared.keys import Keys
from shared.redis_connection import binary_twin
from shared.settings import Settings

SEARCH_SIZES = (10_000, 100_000)
DIMENSIONS = 384
QUERIES = 5


async def throughput(url: str, family: str, count: int) -> None:
    texts = banking77().texts[:count]
    embedder = build_embedder(Settings(embedder=family))  # type: ignore[arg-type]
    embedder.embed(texts[:BATCH])  # warm-up
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        embedder.embed(texts[start : start + BATCH])
    raw = len(texts) / (time.perf_counter() - started)
    stages = await cluster_texts(url, texts, embedder, {"embedder": family}, passes=False)
    clustered = len(texts) / stages.drain_seconds
    print(f"embedder {embedder.name}: {raw:,.0f} items/s alone")
    print(f"clusterer end to end:    {clustered:,.0f} items/s = {clustered / raw:.0%} of the embedder")


async def search(url: str) -> None:
    redis = binary_twin(Redis.from_url(url))
    rng = np.random.default_rng(0)
    for size in SEARCH_SIZES:
        await redis.flushdb()
        index = RedisVectorIndex(redis, Keys(), "bench", DIMENSIONS)
        matrix = rng.normal(size=(size, DIMENSIONS)).astype(np.float32)
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        for start in range(0, size, 1000):
            chunk = matrix[start : start + 1000]
            await index.upsert([VectorRecord(f"i{start + n}", v, "c") for n, v in enumerate(chunk)])
        queries = matrix[:BATCH]
        started = time.perf_counter()
        for _ in range(QUERIES):
            await index.query(queries, top_k=10)
        ours = (time.perf_counter() - started) / QUERIES
        started = time.perf_counter()
        for _ in range(QUERIES):
            queries @ matrix.T
        floor = (time.perf_counter() - started) / QUERIES
        replica_started = time.perf_counter()
        await RedisVectorIndex(redis, Keys(), "bench", DIMENSIONS).sync()
        replay = time.perf_counter() - replica_started
        print(
            f"search {size:>7,} items: {ours * 1000:7.1f} ms per batch of {BATCH} "
            f"(bare matrix product {floor * 1000:6.1f} ms); a new replica loads the log in {replay:.1f} s"
        )
    await redis.aclose()


async def main(family: str, count: int) -> None:
    with throwaway_redis() as url:
        await throughput(url, family, count)
        await search(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="hashing", choices=["hashing", "minilm"])
    parser.add_argument("--items", type=int, default=2000)
    args = parser.parse_args()
    asyncio.run(main(args.embedder, args.items))
