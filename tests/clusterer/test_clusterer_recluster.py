"""`soulcaster recluster` and the average-linkage merge rule, against real Redis with the hashing embedder."""

from __future__ import annotations

import asyncio

import numpy as np
from redis.asyncio import Redis

from services.clusterer.assignment import ClusterState, seed_cluster
from services.clusterer.embedders.hashing import HashingEmbedder
from services.clusterer.lock import RedisLock
from services.clusterer.merging import plan_merges
from services.clusterer.recluster import Reclusterer
from services.clusterer.vector_index.redis_index import RedisVectorIndex
from services.clusterer.worker import build_clusterer_consumer
from services.dev.stand_ins.feedback_seed import seed_items, topic_titles
from shared.keys import Keys
from shared.redis_connection import binary_twin
from shared.settings import Settings
from tests.clusterer.test_clusterer_worker import drained
from tests.shared.test_operator_commands import soulcaster
from tests.support.cluster_invariants import assert_each_item_in_one_cluster
from tests.support.waiting import run_consumers


async def seed_indexed(redis: Redis, keys: Keys, titles: list[str], source: str) -> list[str]:
    """Items plus the per-source and global indexes the ingest worker keeps."""
    ids = await seed_items(redis, keys, titles, source=source)
    for rank, item_id in enumerate(ids):
        await redis.zadd(keys.feedback_created, {item_id: rank})
        await redis.zadd(keys.feedback_source(source), {item_id: rank})
    return ids


async def cluster_everything(redis: Redis, keys: Keys, settings: Settings) -> None:
    await run_consumers([build_clusterer_consumer(settings, redis, keys)], lambda: drained(redis, keys))


def reclusterer(redis: Redis, keys: Keys, settings: Settings) -> Reclusterer:
    embedder = HashingEmbedder()
    index = RedisVectorIndex(binary_twin(redis), keys, embedder.name, embedder.dimensions)
    lock = RedisLock(redis, keys.cluster_lock, settings.cluster_lock_ttl_ms)
    return Reclusterer(redis, keys, lock, embedder, index)


async def test_recluster_all_rebuilds_every_cluster_without_losing_an_item(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    ids = await seed_indexed(redis, keys, topic_titles(), "manual")
    await cluster_everything(redis, keys, settings)
    before = await assert_each_item_in_one_cluster(redis, keys, ids)

    result = await reclusterer(redis, keys, settings).recluster_all()
    assert (result.requeued, result.clusters_deleted) == (len(ids), len(before))
    assert await redis.smembers(keys.unclustered) == set(ids)
    assert not await redis.smembers(keys.clusters_all)
    assert not await redis.zcard(keys.clusters_by_size) and not await redis.zcard(keys.clusters_by_created)
    assert not [key async for key in redis.scan_iter(match=keys.vectors("*"))]
    assert {await redis.hget(keys.feedback(i), "clustered") for i in ids} == {"false"}

    again = await reclusterer(redis, keys, settings).recluster_all()  # re-running is safe
    assert (again.requeued, again.clusters_deleted) == (len(ids), 0)
    await cluster_everything(redis, keys, settings)
    after = await assert_each_item_in_one_cluster(redis, keys, ids)
    assert sorted(map(sorted, after.values())) == sorted(map(sorted, before.values()))


async def test_recluster_one_source_shrinks_shared_clusters_exactly(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    manual = await seed_indexed(redis, keys, topic_titles()[:9], "manual")
    reddit = await seed_indexed(redis, keys, topic_titles()[9:], "reddit")
    await cluster_everything(redis, keys, settings)
    await assert_each_item_in_one_cluster(redis, keys, manual + reddit)

    result = await reclusterer(redis, keys, settings).recluster_source("reddit")
    assert (result.requeued, result.clusters_deleted, result.clusters_shrunk) == (len(reddit), 0, 3)
    assert await redis.smembers(keys.unclustered) == set(reddit)
    embedder = HashingEmbedder()
    for cluster_id in await redis.smembers(keys.clusters_all):
        members = sorted(await redis.smembers(keys.cluster_items(cluster_id)))
        assert set(members) <= set(manual)
        fields = await redis.hgetall(keys.cluster(cluster_id))
        titles = [await redis.hget(keys.feedback(i), "title") for i in members]
        expected = embedder.embed(titles).mean(axis=0)
        assert np.allclose(np.asarray(eval(fields["centroid"])), expected, atol=1e-5)
        assert fields["source_counts"] == f'{{"manual": {len(members)}}}'
        assert int(fields["size"]) == len(members) and fields["central_item"] in members

    await cluster_everything(redis, keys, settings)
    final = await assert_each_item_in_one_cluster(redis, keys, manual + reddit)
    assert sorted(len(m) for m in final.values()) == [5, 5, 5]


def test_average_linkage_keeps_a_loose_cluster_from_absorbing_a_tight_neighbour() -> None:
    """Centroid directions agree exactly, but the loose cluster's members are spread out."""
    spread = np.eye(4)[:, :4] * 0.5 + 0.5 / 4  # four members around the diagonal
    spread /= np.linalg.norm(spread, axis=1, keepdims=True)
    loose = ClusterState("loose", spread.sum(axis=0), 4, "l0", 0.5, {"x": 4}, "t")
    diagonal = np.full(4, 0.5)
    tight = seed_cluster("tight", diagonal, "x", "t")
    centroid_cosine = float(
        loose.total @ tight.total / np.linalg.norm(loose.total) / np.linalg.norm(tight.total)
    )
    assert centroid_cosine > 0.99
    assert plan_merges({"loose": loose, tight.id: tight}, {("loose", tight.id)}, threshold=0.8) == []
    twin = seed_cluster("twin", diagonal, "x", "t")
    merged = plan_merges({tight.id: tight, twin.id: twin}, {(tight.id, twin.id)}, threshold=0.8)
    assert [g.state.size for g in merged] == [2]


async def test_recluster_command_requeues_everything_and_requires_a_scope(
    redis: Redis, keys: Keys, settings: Settings, redis_url: str
) -> None:
    ids = await seed_indexed(redis, keys, topic_titles(), "manual")
    await cluster_everything(redis, keys, settings)

    result = await asyncio.to_thread(soulcaster, redis_url, "recluster", "--all")
    assert result.returncode == 0, result.stderr
    assert f"re-enqueued {len(ids)} items; deleted 3 clusters" in result.stdout
    assert await redis.smembers(keys.unclustered) == set(ids)

    unscoped = await asyncio.to_thread(soulcaster, redis_url, "recluster")
    assert unscoped.returncode == 2 and "one of the arguments --all --source is required" in unscoped.stderr
