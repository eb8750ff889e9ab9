"""The clusterer on three partitions: on one redis-server (tagged names, quick) and on a real
3-master Redis Cluster (slow), with the same scenarios, the hashing embedder and the invariants of
tests/support/cluster_invariants.py. Items come through the real API and ingest workers in one
test; the others seed them the way the ingest script leaves them, each in its partition: hash,
indexes, unclustered set, new-item event."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping

import pytest
from redis.asyncio import Redis

from services.clusterer.cluster_store import ClusterStore
from services.clusterer.consolidation import build_consolidator
from services.clusterer.lock import RedisLock
from services.clusterer.recluster import Reclusterer
from services.clusterer.sweeper import Sweeper
from services.clusterer.worker import ClusterWorker, build_clusterer_consumers
from services.dev.stand_ins.feedback_seed import seed_items, topic_titles
from services.ingest.worker import build_ingest_consumer
from shared.keys import Keys
from shared.redis_connection import connect, is_cluster
from shared.settings import Settings
from tests.api.conftest import client_for
from tests.clusterer.test_clusterer_process import SOULCASTER, start_clusterer
from tests.support.cluster_invariants import assert_each_item_in_one_cluster, cluster_membership
from tests.support.drained import drained
from tests.support.redis_cluster import LocalRedisCluster
from tests.support.waiting import eventually, run_consumers

PARTITIONS = 3


@pytest.fixture(params=["one-server", pytest.param("cluster", marks=pytest.mark.slow)])
def partitioned(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Settings with three partitions, on the test redis-server or on the real cluster."""
    if request.param == "one-server":
        return settings.model_copy(update={"ingest_partitions": PARTITIONS})
    cluster: LocalRedisCluster = request.getfixturevalue("cluster")
    cluster.flush()
    return settings.model_copy(
        update={"ingest_partitions": PARTITIONS, "redis_cluster": True, "redis_url": cluster.url}
    )


@pytest.fixture
async def client(partitioned: Settings, redis: Redis) -> AsyncIterator[Redis]:
    """The product's own client for those settings (a cluster client on the cluster); `redis`
    flushes the one-server database first."""
    connection = connect(partitioned)
    try:
        yield connection
    finally:
        await connection.aclose()


@pytest.fixture
def pkeys(partitioned: Settings) -> Keys:
    return partitioned.keys()


async def seed_spread(redis: Redis, keys: Keys, titles: list[str]) -> list[str]:
    """Items in every partition, with the per-partition indexes the ingest script keeps."""
    ids = await seed_items(redis, keys, titles)
    assert {keys.partitioning.of(i) for i in ids} == set(range(PARTITIONS)), "seed every partition"
    for rank, item_id in enumerate(ids):
        partition = keys.for_item(item_id)
        await redis.zadd(partition.feedback_created, {item_id: rank})
        await redis.zadd(partition.feedback_source("manual"), {item_id: rank})
    return ids


async def cluster_all(redis: Redis, keys: Keys, settings: Settings) -> None:
    await run_consumers(build_clusterer_consumers(settings, redis, keys), lambda: drained(redis, keys))


async def test_items_of_every_partition_are_each_clustered_exactly_once(
    client: Redis, pkeys: Keys, partitioned: Settings
) -> None:
    ids = await seed_spread(client, pkeys, topic_titles())
    await cluster_all(client, pkeys, partitioned)

    members = await assert_each_item_in_one_cluster(client, pkeys, ids)
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]
    assert any(len({pkeys.partitioning.of(i) for i in m}) > 1 for m in members.values())
    if partitioned.redis_cluster:
        assert is_cluster(client)


async def test_items_ingested_through_the_real_api_and_ingest_workers_are_each_clustered_once(
    client: Redis, pkeys: Keys, partitioned: Settings
) -> None:
    titles = topic_titles()
    batch = {
        "items": [{"source": "manual", "title": t, "external_id": f"e-{n}"} for n, t in enumerate(titles)]
    }
    async for api in client_for(partitioned):
        assert (await api.post("/ingest/feedback", json=batch)).status_code == 202
    ingest = [
        build_ingest_consumer(partitioned, client, pkeys.partition(i)) for i in partitioned.owned_partitions
    ]
    for consumer in ingest:
        await consumer.ensure_group()
    clusterers = build_clusterer_consumers(partitioned, client, pkeys)
    await run_consumers([*ingest, *clusterers], lambda: drained(client, pkeys, through_ingest=True))

    ids = [i for keys in pkeys.partitions for i in await client.zrange(keys.feedback_created, 0, -1)]
    assert len(ids) == len(titles)
    assert {pkeys.partitioning.of(i) for i in ids} == set(range(PARTITIONS))
    members = await assert_each_item_in_one_cluster(client, pkeys, ids)
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]


async def test_a_crash_between_the_cluster_write_and_the_mirror_is_repaired_by_the_redelivery(
    client: Redis, pkeys: Keys, partitioned: Settings
) -> None:
    ids = await seed_spread(client, pkeys, topic_titles())
    consumers = build_clusterer_consumers(partitioned, client, pkeys)
    worker = consumers[0]._handler
    assert isinstance(worker, ClusterWorker)
    store = worker._store
    real_mirror = store.mirror
    written: dict[str, str] = {}

    async def crash_before_the_first_mirror(cluster_of: Mapping[str, str]) -> None:
        if not written:
            written.update(await client.hgetall(pkeys.cluster_of))
            assert written, "the cluster write landed before the mirror"
            unmirrored = await client.hmget(pkeys.feedback(next(iter(cluster_of))), ["clustered"])
            assert unmirrored == ["false"]
            raise ConnectionError("the clusterer died before mirroring its write")
        await real_mirror(cluster_of)

    store.mirror = crash_before_the_first_mirror  # type: ignore[method-assign]
    await run_consumers(consumers, lambda: drained(client, pkeys))

    assert written, "the mirror failed once"
    members = await assert_each_item_in_one_cluster(client, pkeys, ids)
    owner = {item_id: cluster_id for cluster_id, items in members.items() for item_id in items}
    assert {item_id: owner[item_id] for item_id in written} == written, "the items kept their clusters"
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]


async def test_two_clusterer_processes_drain_three_partitions_together(
    client: Redis, pkeys: Keys, partitioned: Settings
) -> None:
    titles = [f"{title} (report {n})" for n in range(4) for title in topic_titles()]
    ids = await seed_spread(client, pkeys, titles)
    second = connect(partitioned)  # the other process's own client
    try:
        consumers = [
            consumer
            for n, redis in enumerate((client, second))
            for consumer in build_clusterer_consumers(
                partitioned.model_copy(update={"consumer_name": f"c{n}", "clusterer_batch_size": 4}),
                redis,
                pkeys,
            )
        ]
        assert len(consumers) == 2 * PARTITIONS
        await run_consumers(consumers, lambda: drained(client, pkeys))
    finally:
        await second.aclose()

    members = await assert_each_item_in_one_cluster(client, pkeys, ids)
    assert sorted(len(m) for m in members.values()) == [20, 20, 20]


async def test_a_consolidation_pass_moves_items_of_every_partition_and_mirrors_them(
    client: Redis, pkeys: Keys, partitioned: Settings
) -> None:
    ids = await seed_spread(client, pkeys, topic_titles())
    strict = partitioned.model_copy(update={"cluster_resolution": 1.0, "cluster_similarity_threshold": 0.99})
    await cluster_all(client, pkeys, strict)  # online: every item alone
    assert len(await assert_each_item_in_one_cluster(client, pkeys, ids)) == 15

    [result] = await build_consolidator(strict, client, pkeys).run()
    members = await assert_each_item_in_one_cluster(client, pkeys, ids)
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]
    assert result.moved == 12 and result.deleted == 12


async def test_recluster_all_requeues_every_item_in_its_own_partition_then_clusters_again(
    client: Redis, pkeys: Keys, partitioned: Settings
) -> None:
    ids = await seed_spread(client, pkeys, topic_titles())
    await cluster_all(client, pkeys, partitioned)
    lock = RedisLock(client, pkeys.cluster_lock, 30_000)

    result = await Reclusterer(client, pkeys, lock).recluster_all()

    assert (result.requeued, result.clusters_deleted) == (15, 3)
    assert await cluster_membership(client, pkeys) == {}
    assert not await client.exists(pkeys.cluster_of)
    assert not [key async for key in client.scan_iter(match=pkeys.vectors("*"))]
    for index, keys in enumerate(pkeys.partitions):
        mine = {i for i in ids if pkeys.partitioning.of(i) == index}
        assert await client.smembers(keys.unclustered) == mine
        events = await client.xrange(keys.new_item_stream)
        assert {fields["id"] for _, fields in events[-len(mine) :]} == mine
    for item_id in ids:
        assert await client.hmget(pkeys.feedback(item_id), ["clustered", "cluster_id"]) == ["false", None]

    await cluster_all(client, pkeys, partitioned)
    members = await assert_each_item_in_one_cluster(client, pkeys, ids)
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]


async def test_the_sweeper_requeues_orphans_of_every_partition_on_their_own_stream(
    client: Redis, pkeys: Keys, partitioned: Settings
) -> None:
    ids = await seed_items(client, pkeys, topic_titles()[:6], publish=False)
    await client.sadd(pkeys.for_item("gone-item").unclustered, "gone-item")

    result = await Sweeper(client, pkeys).sweep()

    assert (result.requeued, result.dropped) == (6, 1)
    for index, keys in enumerate(pkeys.partitions):
        mine = sorted(i for i in ids if pkeys.partitioning.of(i) == index)
        assert sorted(f["id"] for _, f in await client.xrange(keys.new_item_stream)) == mine
    await cluster_all(client, pkeys, partitioned)
    await assert_each_item_in_one_cluster(client, pkeys, ids)
    assert await Sweeper(client, pkeys).sweep() == type(result)(0, 0)


async def test_clusters_from_before_the_authority_are_adopted_from_their_members(
    client: Redis, pkeys: Keys, partitioned: Settings
) -> None:
    ids = await seed_spread(client, pkeys, topic_titles())
    await cluster_all(client, pkeys, partitioned)
    expected = await client.hgetall(pkeys.cluster_of)
    await client.delete(pkeys.cluster_of)  # as a deployment from before `cluster:of` left it
    store = ClusterStore(client, pkeys, pkeys.cluster_lock)

    assert await store.adopt_clusters() == len(ids)
    assert await client.hgetall(pkeys.cluster_of) == expected
    assert await store.adopt_clusters() == 0, "only once"


def partition_env(settings: Settings) -> dict[str, str]:
    return {
        "INGEST_PARTITIONS": str(settings.ingest_partitions),
        "REDIS_CLUSTER": str(settings.redis_cluster).lower(),
    }


async def unclustered_count(redis: Redis, keys: Keys) -> int:
    return sum([int(await redis.scard(partition.unclustered)) for partition in keys.partitions])


@pytest.mark.slow
async def test_two_clusterer_processes_one_killed_mid_run_leave_every_partition_clustered(
    client: Redis, pkeys: Keys, partitioned: Settings
) -> None:
    titles = [f"{title} (report {n})" for n in range(20) for title in topic_titles()]
    ids = await seed_spread(client, pkeys, titles)
    env = partition_env(partitioned)
    doomed = start_clusterer(partitioned.redis_url, "doomed", **env)
    peer = start_clusterer(partitioned.redis_url, "peer", **env)
    try:

        async def some_clustered() -> bool:
            return await unclustered_count(client, pkeys) < len(ids) - 20

        await eventually(some_clustered)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        assert await unclustered_count(client, pkeys) > 0, "killed too late to prove anything"
        await eventually(lambda: drained(client, pkeys))
    finally:
        for process in (doomed, peer):
            process.terminate()
            process.wait(timeout=30)
    members = await assert_each_item_in_one_cluster(client, pkeys, ids)
    assert len(members) == 3


def soulcaster(settings: Settings, *command: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "EMBEDDER": "hashing",
        "CLUSTER_RESOLUTION": "1",
        **partition_env(settings),
    }
    done = subprocess.run(
        [SOULCASTER, "--log-level", "WARNING", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.mark.slow
async def test_the_consolidate_recluster_and_sweep_commands_span_every_partition(
    client: Redis, pkeys: Keys, partitioned: Settings
) -> None:
    ids = await seed_spread(client, pkeys, topic_titles())
    strict = partitioned.model_copy(update={"cluster_resolution": 1.0, "cluster_similarity_threshold": 0.99})
    await cluster_all(client, pkeys, strict)

    passed = await asyncio.to_thread(soulcaster, partitioned, "consolidate", "--full")
    assert '"moved": 12' in passed.stdout
    members = await assert_each_item_in_one_cluster(client, pkeys, ids)
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]

    requeued = await asyncio.to_thread(soulcaster, partitioned, "recluster", "--source", "manual")
    assert "re-enqueued 15 items; deleted 3 clusters" in requeued.stdout
    assert await unclustered_count(client, pkeys) == len(ids)
    for keys in pkeys.partitions:  # as if every event had been lost: only the sweeper can help
        await client.delete(keys.new_item_stream)
    swept = await asyncio.to_thread(soulcaster, partitioned, "sweep")
    assert "re-enqueued 15, dropped 0" in swept.stdout

    await cluster_all(client, pkeys, partitioned)
    members = await assert_each_item_in_one_cluster(client, pkeys, ids)
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]


async def test_coroutines_of_one_process_never_hold_the_lock_together(client: Redis, pkeys: Keys) -> None:
    lock = RedisLock(client, pkeys.cluster_lock, 30_000)
    holders: list[int] = []
    overlaps: list[int] = []

    async def hold(n: int) -> None:
        async with lock.held(30):
            if holders:
                overlaps.append(n)
            holders.append(n)
            await asyncio.sleep(0.01)
            holders.remove(n)

    await asyncio.gather(*(hold(n) for n in range(8)))
    assert overlaps == []
    assert not await client.exists(pkeys.cluster_lock)


def test_a_clusterer_process_reads_the_partitions_it_owns_with_one_worker(settings: Settings) -> None:
    owning = settings.model_copy(update={"ingest_partitions": PARTITIONS, "ingest_partitions_owned": "1-2"})
    keys = owning.keys()
    consumers = build_clusterer_consumers(owning, Redis.from_url(owning.redis_url), keys)

    assert [c.config.stream for c in consumers] == [
        keys.partition(1).new_item_stream,
        keys.partition(2).new_item_stream,
    ]
    assert len({id(c._handler) for c in consumers}) == 1
