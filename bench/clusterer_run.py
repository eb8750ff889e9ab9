"""Feeding labelled texts through the real clusterer on a throwaway Redis (shared by the benches).

Self-contained on purpose (benches do not import the test support package): a redis-server on a
free port, items written the way the ingest worker leaves them, then the clusterer's batch handler
and the consolidation pass exactly as a clusterer process runs them.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

from services.clusterer.consolidation import build_consolidator
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
    """A fresh redis-server for one benchmark run, on a free port, gone afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        server = RedisServer(Path(folder)).start()
        try:
            yield server.url
        finally:
            server.stop()


@dataclass
class Stages:
    """Each text's cluster id at three moments, and how long things took."""

    at_drain: list[str] = field(default_factory=list)
    after_pass: list[str] = field(default_factory=list)  # the debounced pass after the drain
    after_full: list[str] = field(default_factory=list)
    drain_seconds: float = 0.0
    pass_seconds: float = 0.0  # the pass after the drain (add the debounce for time-to-settle)
    passes_during_drain: int = 0


async def _clusters(redis: Redis, keys: Keys, ids: Sequence[str]) -> list[str]:
    async with redis.pipeline(transaction=False) as pipe:
        for item_id in ids:
            pipe.hget(keys.feedback(item_id), "cluster_id")
        found: list[str] = await pipe.execute()
    return found


async def cluster_texts(
    redis_url: str,
    texts: Sequence[str],
    embedder: object,
    settings_update: dict[str, object],
    source: str = "manual",
    passes: bool = True,
) -> Stages:
    """Every text through the clusterer in arrival order. With `passes`, the consolidation pass
    runs as the clusterer's background task would: during the drain whenever unconsolidated items
    have waited CLUSTER_PASS_MAX_WAIT_SECONDS (the stream never goes quiet), once after the drain
    (the debounced pass), then a full pass for reference."""
    settings = Settings(redis_url=redis_url, **settings_update)  # type: ignore[arg-type]
    redis = Redis.from_url(redis_url, decode_responses=True)
    keys = Keys()
    await redis.flushdb()
    ids = await seed_items(redis, keys, [text.strip() or "-" for text in texts], source=source)
    worker = build_cluster_worker(settings, redis, keys, embedder=embedder)  # type: ignore[arg-type]
    consolidator = build_consolidator(settings, redis, keys, embedder=embedder)  # type: ignore[arg-type]
    entries = await redis.xrange(keys.new_item_stream)
    stages = Stages()
    started = last_pass = time.perf_counter()
    for start in range(0, len(entries), BATCH):
        await worker([StreamMessage(entry_id, fields) for entry_id, fields in entries[start : start + BATCH]])
        if passes and time.perf_counter() - last_pass >= settings.cluster_pass_max_wait_seconds:
            await consolidator.run()
            last_pass = time.perf_counter()
            stages.passes_during_drain += 1
    stages.drain_seconds = time.perf_counter() - started
    stages.at_drain = await _clusters(redis, keys, ids)
    if passes:
        await asyncio.sleep(0)
        begun = time.perf_counter()
        await consolidator.run()
        stages.pass_seconds = time.perf_counter() - begun
        stages.after_pass = await _clusters(redis, keys, ids)
        await consolidator.run(full=True)
        stages.after_full = await _clusters(redis, keys, ids)
    await redis.aclose()
    return stages
