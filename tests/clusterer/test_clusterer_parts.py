"""The clusterer's parts against real Redis: the lock, the Redis vector index, merging, the sweeper."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from redis.asyncio import Redis

from services.clusterer.assignment import seed_cluster
from services.clusterer.consolidation import build_consolidator
from services.clusterer.lock import LockTimeout, RedisLock
from services.clusterer.merging import plan_merges
from services.clusterer.sweeper import Sweeper
from services.clusterer.vector_index.base import VectorRecord
from services.clusterer.vector_index.redis_index import RedisVectorIndex
from services.clusterer.worker import build_clusterer_consumer
from services.dev.stand_ins.feedback_seed import seed_items, topic_titles
from shared.keys import CLUSTERER_GROUP, Keys, NewItemField
from shared.redis_connection import binary_twin
from shared.settings import Settings
from tests.clusterer.test_clusterer_worker import drained
from tests.support.cluster_invariants import assert_each_item_in_one_cluster
from tests.support.waiting import run_consumers


async def test_lock_is_exclusive_and_only_its_owner_releases_it(redis: Redis) -> None:
    lock = RedisLock(redis, "lock", ttl_ms=10_000)
    token = await lock.acquire(wait_seconds=1)
    with pytest.raises(LockTimeout):
        await lock.acquire(wait_seconds=0.1)
    assert not await lock.release("someone-else")
    assert await redis.get("lock") == token
    assert await lock.release(token)
    assert await redis.get("lock") is None


async def test_lock_expires_and_a_late_owner_cannot_renew_or_release_the_next_one(redis: Redis) -> None:
    lock = RedisLock(redis, "lock", ttl_ms=50)
    stale = await lock.acquire(wait_seconds=1)
    fresh = await lock.acquire(wait_seconds=5)  # only possible once the first expired
    assert not await lock.renew(stale)
    assert not await lock.release(stale)
    assert await redis.get("lock") == fresh


async def test_held_lock_is_renewed_while_the_block_runs(redis: Redis) -> None:
    lock = RedisLock(redis, "lock", ttl_ms=150)
    async with lock.held(wait_seconds=1) as token:
        await asyncio.sleep(0.5)  # over three TTLs
        assert await redis.get("lock") == token
    assert await redis.get("lock") is None


def unit_rows(count: int, dimensions: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, dimensions)).astype(np.float32)
    normalised: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


async def test_redis_index_is_exact_and_shared_by_replicas(redis: Redis) -> None:
    vectors = unit_rows(300, 16, seed=1)
    writer = RedisVectorIndex(binary_twin(redis), Keys(), "test", 16)
    await writer.upsert([VectorRecord(f"i{n}", v, f"c{n % 7}") for n, v in enumerate(vectors)])
    await writer.reassign(["i0", "i1"], "merged")

    replica = RedisVectorIndex(binary_twin(redis), Keys(), "test", 16)  # a restart or another pod
    queries = unit_rows(5, 16, seed=2)
    found = await replica.query(queries, top_k=4)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :4]
    assert [[m.id for m in row] for row in found] == [[f"i{n}" for n in row] for row in expected]
    assert all(
        m.score == pytest.approx(float(queries[q] @ vectors[int(m.id[1:])]), abs=1e-5)
        for q, row in enumerate(found)
        for m in row
    )
    own = await replica.query(vectors[:2], top_k=1)
    assert [row[0].cluster_id for row in own] == ["merged", "merged"]
    assert len(replica) == 300


def test_merge_plan_joins_close_centroids_without_chaining() -> None:
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.9, 0.436, 0.0])  # cos(a, b) ~ 0.9
    c = np.array([0.6, 0.8, 0.0])  # close to b (~0.89), far from a (0.6)
    states = {
        s.id: s
        for s in (
            seed_cluster("a", a, "x", "t"),
            seed_cluster("b", b, "x", "t"),
            seed_cluster("c", c, "y", "t"),
        )
    }
    heavier = states[seed_cluster("a", a, "x", "t").id]
    heavier.total, heavier.size = 3 * a, 3  # three identical members
    groups = plan_merges(states, {(x, y) for x in states for y in states if x < y}, threshold=0.85)
    assert len(groups) == 1
    merged = groups[0]
    assert merged.target == seed_cluster("a", a, "x", "t").id and merged.absorbed == (
        seed_cluster("b", b, "x", "t").id,
    )
    assert merged.state.size == 4


async def test_machine_pass_folds_split_error_clusters_into_one_by_average_linkage(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    titles = [
        f"login page crashes with error 500 after password reset on {d}"
        for d in ("android", "iphone", "windows laptop", "macbook")
    ]
    ids = await seed_items(redis, keys, titles, source="sentry")
    strict = settings.model_copy(
        update={"cluster_machine_similarity_threshold": 0.99, "cluster_machine_merge_threshold": 0.5}
    )
    await run_consumers([build_clusterer_consumer(strict, redis, keys)], lambda: drained(redis, keys))
    assert len(await assert_each_item_in_one_cluster(redis, keys, ids)) == 4

    [result] = await build_consolidator(strict, redis, keys).run()
    members = await assert_each_item_in_one_cluster(redis, keys, ids)
    assert len(members) == 1 and result.deleted == 3


async def test_sweeper_requeues_orphans_and_drops_missing_items(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    with_event = await seed_items(redis, keys, topic_titles()[:2])
    orphans = await seed_items(redis, keys, topic_titles()[2:4], publish=False)
    await redis.sadd(keys.unclustered, "deleted-item")
    await redis.xgroup_create(keys.new_item_stream, CLUSTERER_GROUP, id="0", mkstream=True)
    await redis.xreadgroup(
        CLUSTERER_GROUP, "c", {keys.new_item_stream: ">"}, count=1
    )  # one pending, one undelivered

    result = await Sweeper(redis, keys).sweep()

    assert (result.requeued, result.dropped) == (2, 1)
    events = [fields[NewItemField.ID] for _, fields in await redis.xrange(keys.new_item_stream)]
    assert sorted(events) == sorted(with_event + orphans)
    assert await redis.smembers(keys.unclustered) == set(with_event + orphans)
    await run_consumers([build_clusterer_consumer(settings, redis, keys)], lambda: drained(redis, keys))
    await assert_each_item_in_one_cluster(redis, keys, with_event + orphans)
    assert await Sweeper(redis, keys).sweep() == type(result)(0, 0)
