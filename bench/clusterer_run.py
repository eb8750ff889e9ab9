"""Feeding labelled texts through the real clusterer on a throwaway Redis (shared by the benches)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

from services.clusterer.worker import build_cluster_worker
from services.dev.local_redis import RedisServer
from services.dev.stand_ins.feedback_seed import seed_items
from shared.consumer import StreamMessage
from shared.keys import Keys
from shared.settings import Settings

BATCH = 64


class PrecomputedEmbedder:
    """Looks vectors up by text: the benches score clustering, not the embedder's speed."""

    def __init__(self, name: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        self.name = name
        self.dimensions = int(vectors.shape[1])
        self._rows = {(text.strip() or "-"): row for row, text in enumerate(texts)}
        self._vectors = vectors

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectors[[self._rows[text] for text in texts]]


@contextmanager
def throwaway_redis() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder)).start()
        try:
            yield server.url
        finally:
            server.stop()


async def cluster_texts(
    redis_url: str,
    texts: Sequence[str],
    embedder: object,
    settings_update: dict[str, object],
    source: str = "manual",
) -> tuple[list[str], float]:
    """Each text's cluster id after the clusterer handled every event in arrival order, and the
    seconds the handler took (seeding not included). Every item gets `source`, which decides its
    thresholds profile (machine text or natural language)."""
    settings = Settings(redis_url=redis_url, cluster_merge_interval_seconds=0, **settings_update)  # type: ignore[arg-type]
    redis = Redis.from_url(redis_url, decode_responses=True)
    keys = Keys()
    await redis.flushdb()
    ids = await seed_items(redis, keys, [text.strip() or "-" for text in texts], source=source)
    worker = build_cluster_worker(settings, redis, keys, embedder=embedder)  # type: ignore[arg-type]
    entries = await redis.xrange(keys.new_item_stream)
    started = time.perf_counter()
    for start in range(0, len(entries), BATCH):
        await worker([StreamMessage(entry_id, fields) for entry_id, fields in entries[start : start + BATCH]])
    elapsed = time.perf_counter() - started
    async with redis.pipeline(transaction=False) as pipe:
        for item_id in ids:
            pipe.hget(keys.feedback(item_id), "cluster_id")
        clusters: list[str] = await pipe.execute()
    await redis.aclose()
    return clusters, elapsed
