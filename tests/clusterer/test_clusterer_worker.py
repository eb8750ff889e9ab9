"""The clusterer against real Redis with the hashing embedder: effects, idempotency, failures."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
from redis.asyncio import Redis

from services.clusterer.assignment import cluster_id_for
from services.clusterer.embedders.hashing import HashingEmbedder
from services.clusterer.worker import build_clusterer_consumer
from services.dev.stand_ins.feedback_seed import seed_items, topic_titles
from shared.keys import Keys
from shared.settings import Settings
from tests.support.cluster_invariants import assert_each_item_in_one_cluster
from tests.support.drained import drained
from tests.support.waiting import run_consumers


async def test_batch_is_clustered_by_topic_with_every_key_in_agreement(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    ids = await seed_items(redis, keys, topic_titles())
    await run_consumers([build_clusterer_consumer(settings, redis, keys)], lambda: drained(redis, keys))

    members = await assert_each_item_in_one_cluster(redis, keys, ids)
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]
    for cluster_id, items in members.items():
        fields = await redis.hgetall(keys.cluster(cluster_id))
        assert fields["summary"].startswith("5 reports (5 manual).")
        assert fields["sources"] == '["manual"]'
        assert len(np.asarray(eval(fields["centroid"]))) == HashingEmbedder().dimensions
        titles = {(await redis.hget(keys.feedback(i), "title")) for i in items}
        assert fields["title"] in titles


async def test_redelivered_event_changes_nothing(redis: Redis, keys: Keys, settings: Settings) -> None:
    ids = await seed_items(redis, keys, topic_titles())
    consumer = build_clusterer_consumer(settings, redis, keys)
    await run_consumers([consumer], lambda: drained(redis, keys))
    before = await snapshot(redis)

    first_event = (await redis.xrange(keys.new_item_stream, count=1))[0][1]
    await redis.xadd(keys.new_item_stream, first_event)  # the same event, delivered again
    await run_consumers([build_clusterer_consumer(settings, redis, keys)], lambda: drained(redis, keys))

    assert await snapshot(redis) == before
    await assert_each_item_in_one_cluster(redis, keys, ids)


async def snapshot(redis: Redis) -> dict[str, object]:
    """Every cluster and feedback key's content (streams and runtime bookkeeping left out)."""
    state: dict[str, object] = {}
    for key in sorted(await redis.keys("*")):
        kind = await redis.type(key)
        if kind == "hash":
            state[key] = await redis.hgetall(key)
        elif kind == "set":
            state[key] = await redis.smembers(key)
        elif kind == "zset":
            state[key] = await redis.zrange(key, 0, -1, withscores=True)
    return state


async def test_three_clusterers_on_one_stream_agree(redis: Redis, keys: Keys, settings: Settings) -> None:
    titles = [f"{title} (report {n})" for n in range(4) for title in topic_titles()]
    ids = await seed_items(redis, keys, titles)
    consumers = [
        build_clusterer_consumer(
            settings.model_copy(update={"consumer_name": f"c{n}", "clusterer_batch_size": 4}), redis, keys
        )
        for n in range(3)
    ]
    await run_consumers(consumers, lambda: drained(redis, keys))

    members = await assert_each_item_in_one_cluster(redis, keys, ids)
    assert len(members) == 3


class FailingEmbedder:
    name = "failing"
    dimensions = 8

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        raise RuntimeError("embedding service unavailable")


async def test_failing_embedder_retries_with_backoff_then_dead_letters(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    ids = await seed_items(redis, keys, topic_titles()[:3])
    embedder = FailingEmbedder()
    consumer = build_clusterer_consumer(settings, redis, keys, embedder=embedder)

    async def all_dead() -> bool:
        return int(await redis.xlen(keys.new_item_stream + ":dlq")) == len(ids)

    await run_consumers([consumer], all_dead)

    assert embedder.calls >= settings.max_deliveries
    dead = await redis.xrange(keys.new_item_dlq)
    assert {fields["id"] for _, fields in dead} == set(ids)
    assert all("embedding service unavailable" in fields["error"] for _, fields in dead)
    assert all(int(fields["deliveries"]) >= settings.max_deliveries for _, fields in dead)
    assert await redis.smembers(keys.unclustered) == set(ids)
    assert await redis.scard(keys.clusters_all) == 0


async def test_cluster_ids_derive_from_the_seed_item(redis: Redis, keys: Keys, settings: Settings) -> None:
    ids = await seed_items(redis, keys, topic_titles()[:3])
    await run_consumers([build_clusterer_consumer(settings, redis, keys)], lambda: drained(redis, keys))
    assert await redis.smembers(keys.clusters_all) == {cluster_id_for(i) for i in ids}


async def test_lock_lost_after_the_vector_upsert_refuses_the_write_and_the_retry_recreates_the_same_clusters(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    ids = await seed_items(redis, keys, topic_titles())
    consumer = build_clusterer_consumer(settings, redis, keys)
    worker = consumer._handler  # the ClusterWorker
    index = worker._index  # type: ignore[attr-defined]
    real_upsert = index.upsert
    stolen = asyncio.Event()

    async def upsert_then_lose_the_lock(records: Sequence[object]) -> None:
        await real_upsert(records)
        if not stolen.is_set():
            stolen.set()
            await redis.set(keys.cluster_lock, "another-owner", px=300)  # expired and taken over

    index.upsert = upsert_then_lose_the_lock
    await run_consumers([consumer], lambda: drained(redis, keys))

    assert stolen.is_set()
    members = await assert_each_item_in_one_cluster(redis, keys, ids)
    assert set(members) <= {cluster_id_for(i) for i in ids}
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]
