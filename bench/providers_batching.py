"""What batching buys against the local wire-format servers: round trips and time per batch.

Baselines measured in the same run: Upstash queried one vector per request with the plain SDK
(what a naive adapter does) against `UpstashVectorIndex.query` (query_many, 100 per request);
Gemini embedded one text per call against `GeminiEmbedder` (100 per call). Loopback latency is
far below a real service's, so real savings are larger than printed here.

    .venv/bin/python -m bench.providers_batching [--queries 200] [--stored 500] [--texts 300]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np
from google.genai import types
from upstash_vector import AsyncIndex

from services.clusterer.embedders.gemini import DIMENSIONS, MODEL, GeminiEmbedder
from services.clusterer.gemini_api import gemini_client
from services.clusterer.vector_index.base import VectorRecord
from services.clusterer.vector_index.upstash import UpstashVectorIndex
from services.dev.stand_ins.gemini_server import GeminiServer
from services.dev.stand_ins.upstash_server import UpstashServer


def _rows(count: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIMENSIONS)).astype(np.float32)
    normalised: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


async def bench_upstash(stored: int, queries: int) -> None:
    with UpstashServer(DIMENSIONS) as server:
        index = UpstashVectorIndex(server.url, server.token, "bench")
        plain = AsyncIndex(server.url, server.token, allow_telemetry=False)
        await index.upsert([VectorRecord(str(n), row, f"c{n}") for n, row in enumerate(_rows(stored, 1))])
        probe = _rows(queries, 2)

        before, started = len(server.requests), time.perf_counter()
        for row in probe:
            await plain.query(vector=row.tolist(), top_k=10, include_metadata=True, namespace="bench")
        one_by_one, one_by_one_requests = time.perf_counter() - started, len(server.requests) - before

        before, started = len(server.requests), time.perf_counter()
        await index.query(probe, top_k=10)
        batched, batched_requests = time.perf_counter() - started, len(server.requests) - before
        await index.aclose()
        await plain._client.aclose()
    print(f"upstash query {queries} vectors over {stored} stored:")
    print(f"  baseline one per request: {one_by_one_requests:5d} requests {one_by_one * 1000:8.1f} ms")
    print(f"  query_many batches:       {batched_requests:5d} requests {batched * 1000:8.1f} ms")


def bench_gemini(texts: int) -> None:
    corpus = [f"feedback {n}: the export button does nothing on page {n % 7}" for n in range(texts)]
    with GeminiServer() as server:
        client = gemini_client(server.api_key, server.url, 60)
        config = types.EmbedContentConfig(task_type="CLUSTERING", output_dimensionality=DIMENSIONS)
        started = time.perf_counter()
        for text in corpus:
            client.models.embed_content(model=MODEL, contents=[text], config=config)
        one_by_one, one_by_one_requests = time.perf_counter() - started, len(server.requests)

        started = time.perf_counter()
        GeminiEmbedder(server.api_key, server.url).embed(corpus)
        batched, batched_requests = time.perf_counter() - started, len(server.requests) - one_by_one_requests
    print(f"gemini embed {texts} texts:")
    print(f"  baseline one per call:    {one_by_one_requests:5d} requests {one_by_one * 1000:8.1f} ms")
    print(f"  batches of 100:           {batched_requests:5d} requests {batched * 1000:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--stored", type=int, default=500)
    parser.add_argument("--texts", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(bench_upstash(args.stored, args.queries))
    bench_gemini(args.texts)


if __name__ == "__main__":
    main()
