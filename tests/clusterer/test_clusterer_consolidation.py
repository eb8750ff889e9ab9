"""The neighbour graph and the consolidation pass against real Redis (hashing embedder)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.clusterer.communities import REFERENCE_NODES, reconcile, scaled_resolution
from services.clusterer.consolidation import Consolidator, build_consolidator, plan_communities
from services.clusterer.neighbour_graph import BatchEdges, GraphReplica, append_edges
from services.clusterer.thresholds import TextKind
from services.clusterer.worker import build_clusterer_consumer
from services.dev.stand_ins.feedback_seed import seed_items, topic_titles
from shared.keys import Keys
from shared.redis_connection import binary_twin
from shared.settings import Settings
from tests.clusterer.test_clusterer_worker import drained
from tests.support.cluster_invariants import assert_each_item_in_one_cluster
from tests.support.waiting import run_consumers


def passes(settings: Settings, **update: object) -> Settings:
    """A small graph needs a low resolution to keep a five-item topic together."""
    return settings.model_copy(update={"cluster_resolution": 1.0, **update})


async def snapshot(redis: Redis, keys: Keys) -> dict[str, object]:
    """Every cluster key and every item's cluster, minus timestamps."""
    state: dict[str, object] = {}
    for cluster_id in sorted(await redis.smembers(keys.clusters_all)):
        fields = await redis.hgetall(keys.cluster(cluster_id))
        fields.pop("updated_at", None)
        state[cluster_id] = (fields, sorted(await redis.smembers(keys.cluster_items(cluster_id))))
    async for key in redis.scan_iter(match=keys.feedback("*")):
        state[key] = await redis.hget(key, "cluster_id")
    state["by_size"] = await redis.zrange(keys.clusters_by_size, 0, -1, withscores=True)
    return state


async def cluster(redis: Redis, keys: Keys, settings: Settings) -> None:
    await run_consumers([build_clusterer_consumer(settings, redis, keys)], lambda: drained(redis, keys))


def test_a_community_keeps_the_id_it_overlaps_most_and_a_split_gets_a_new_one() -> None:
    items = ["a1", "a2", "a3", "b1", "b2", "b3"]
    owners = ["A", "A", "A", "A", "B", "B"]
    assert reconcile(items, owners, [0, 0, 0, 1, 1, 1]) == ["A", "A", "A", "B", "B", "B"]
    split = reconcile(items, owners, [0, 0, 2, 1, 1, 1])
    assert split[:2] == ["A", "A"] and split[3:] == ["B", "B", "B"]
    assert split[2] not in {"A", "B"}
    assert reconcile(items, owners, [0, 0, 2, 1, 1, 1]) == split, "a retry names the split the same"


def test_the_resolution_holds_from_the_benchmark_size_up_and_shrinks_on_smaller_graphs() -> None:
    """The benchmark's figures were measured at the configured resolution, so graphs of its size or
    larger must keep it; smaller graphs get a lower one, the lower the fewer their items."""
    assert scaled_resolution(4.0, REFERENCE_NODES) == 4.0
    assert scaled_resolution(4.0, 1_000_000) == 4.0
    small = [scaled_resolution(4.0, n) for n in (35, 300, 2000)]
    assert small == sorted(small) and small[-1] < 4.0


async def test_graph_writes_are_idempotent_and_shared_by_replicas(redis: Redis, keys: Keys) -> None:
    binary = binary_twin(redis)
    key = keys.neighbour_graph("test", TextKind.NATURAL)
    edges = BatchEdges(nodes=["x", "y"])
    edges.add("y", "x", 0.9)
    await append_edges(binary, key, edges)
    await append_edges(binary, key, edges)  # a retried batch
    replica, other = GraphReplica(binary, key), GraphReplica(binary, key)
    await replica.sync()
    await other.sync()
    assert replica.ids == other.ids == ["x", "y"]
    assert replica.sources.values.tolist() == [1] and replica.weights.values.tolist() == [pytest.approx(0.9)]
    assert replica.degrees().tolist() == [pytest.approx(0.9), pytest.approx(0.9)]


async def two_cliques(redis: Redis, keys: Keys) -> GraphReplica:
    """Items a0-a4 and b0-b4, strongly linked within each group, one weak link between them."""
    binary = binary_twin(redis)
    graph = GraphReplica(binary, keys.neighbour_graph("test", TextKind.NATURAL))
    groups = [[f"{g}{n}" for n in range(5)] for g in "ab"]
    edges = BatchEdges(nodes=groups[0] + groups[1])
    for group in groups:
        for n, item in enumerate(group):
            for other in group[:n]:
                edges.add(item, other, 0.9)
    edges.add("b0", "a0", 0.1)
    await append_edges(binary, graph.key, edges)
    await graph.sync()
    return graph


def partition(owners: dict[str, str], moves: list[tuple[str, str, str]]) -> set[frozenset[str]]:
    after = dict(owners) | {item: target for item, _, target in moves}
    return {frozenset(i for i in after if after[i] == cluster) for cluster in set(after.values())}


async def test_a_pass_from_scratch_undoes_clusters_an_earlier_pass_fixed(redis: Redis, keys: Keys) -> None:
    """A pass over a partial graph (mid-drain) may leave clusters that mix two topics. An
    incremental pass moves such a cluster only as one node, so nothing untangles it; a pass from
    scratch finds the graph's communities whatever the clusters were, and names them after the
    clusters they overlap most."""
    graph = await two_cliques(redis, keys)
    mixed = {i: ("X" if i[1] in "01" else "Y") for i in graph.ids}  # each cluster half a, half b
    cliques = {frozenset(f"{g}{n}" for n in range(5)) for g in "ab"}
    assert partition(mixed, plan_communities(graph, mixed, set(), 1.0)) != cliques, "X and Y: two nodes"
    assert partition(mixed, plan_communities(graph, mixed, set(), 1.0, from_scratch=True)) == cliques
    other = {i: ("P" if i in {"a0", "b4"} else "Q") for i in graph.ids}
    assert partition(other, plan_communities(graph, other, set(), 1.0, from_scratch=True)) == cliques
    settled = {i: ("A" if i[0] == "a" else "B") for i in graph.ids}
    assert plan_communities(graph, settled, set(), 1.0, from_scratch=True) == [], "right clusters stay"


async def test_the_clusterer_writes_one_graph_entry_per_batch_and_kind(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    await seed_items(redis, keys, topic_titles())
    await seed_items(redis, keys, ["ZeroDivisionError in report export"], source="sentry")
    await cluster(redis, keys, settings)
    assert await redis.xlen(keys.neighbour_graph("hashing-1024", TextKind.NATURAL)) == 1
    assert await redis.xlen(keys.neighbour_graph("hashing-1024", TextKind.MACHINE)) == 1


async def test_pass_turns_split_topics_into_one_cluster_each_and_a_second_pass_changes_nothing(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    ids = await seed_items(redis, keys, topic_titles())
    strict = passes(settings, cluster_similarity_threshold=0.99)  # online: every item alone
    await cluster(redis, keys, strict)
    assert len(await assert_each_item_in_one_cluster(redis, keys, ids)) == 15

    consolidator = build_consolidator(strict, redis, keys)
    [result] = await consolidator.run()
    members = await assert_each_item_in_one_cluster(redis, keys, ids)
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]
    assert result.moved == 12 and result.deleted == 12
    for cluster_id, items in members.items():
        assert cluster_id in {await redis.hget(keys.feedback(i), "cluster_id") for i in items}
        title = await redis.hget(keys.cluster(cluster_id), "title")
        assert title in {await redis.hget(keys.feedback(i), "title") for i in items}

    before = await snapshot(redis, keys)
    assert await consolidator.run() == [], "nothing new since the last pass"
    await consolidator.run(full=True)
    assert await snapshot(redis, keys) == before


async def test_unchanged_communities_keep_their_ids_when_another_grows(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    ids = await seed_items(redis, keys, topic_titles())
    tuned = passes(settings)
    await cluster(redis, keys, tuned)
    consolidator = build_consolidator(tuned, redis, keys)
    await consolidator.run()
    first = await assert_each_item_in_one_cluster(redis, keys, ids)

    more = await seed_items(
        redis,
        keys,
        [f"export to csv produces an empty spreadsheet file on {d}" for d in ("chromebook", "ipad")],
    )
    await cluster(redis, keys, tuned)
    await consolidator.run()
    second = await assert_each_item_in_one_cluster(redis, keys, ids + more)
    grown = [cid for cid, items in second.items() if set(more) <= items]
    assert len(grown) == 1 and grown[0] in first
    assert {cid: items for cid, items in second.items() if cid not in grown} == {
        cid: items for cid, items in first.items() if cid not in grown
    }


async def test_every_pass_over_a_small_graph_re_decides_all_of_it(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    """Below FROM_SCRATCH_NODES a pass is a full one, so the pass after a drain lands where a fresh
    full pass would, whatever passes ran during it."""
    ids = await seed_items(redis, keys, topic_titles())
    tuned = passes(settings)
    await cluster(redis, keys, tuned)
    consolidator = build_consolidator(tuned, redis, keys)
    await consolidator.run()
    more = await seed_items(redis, keys, ["zebra quartz"])  # no word in common: no graph neighbour
    await cluster(redis, keys, tuned)
    [result] = await consolidator.run()
    assert result.region == len(ids + more)


async def test_a_pass_that_loses_its_lock_before_the_commit_writes_nothing(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    ids = await seed_items(redis, keys, topic_titles())
    strict = passes(settings, cluster_similarity_threshold=0.99)
    await cluster(redis, keys, strict)
    before = await snapshot(redis, keys)
    consolidator = build_consolidator(strict, redis, keys)
    store = consolidator._store
    real_commit = store.commit_pass

    async def lose_the_lock_then_commit(*args: object, **kwargs: object) -> tuple[int, int]:
        await redis.set(keys.cluster_lock, "another-owner", px=300)  # expired and taken over
        return await real_commit(*args, **kwargs)  # type: ignore[arg-type]

    store.commit_pass = lose_the_lock_then_commit  # type: ignore[method-assign]
    with pytest.raises(ResponseError, match="LOCKLOST"):
        await consolidator.run()
    assert await snapshot(redis, keys) == before
    assert await redis.get(keys.graph_consolidated("hashing-1024", TextKind.NATURAL)) is None

    store.commit_pass = real_commit  # type: ignore[method-assign]
    await asyncio.sleep(0.35)
    await consolidator.run()
    assert len(await assert_each_item_in_one_cluster(redis, keys, ids)) == 3


async def _pass_repeatedly(consolidator: Consolidator, stop: asyncio.Event) -> int:
    runs = 0
    while not stop.is_set():
        await consolidator.run()
        runs += 1
        await asyncio.sleep(0.01)
    return runs


async def test_three_clusterers_and_a_pass_running_together_keep_every_invariant(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    titles = [f"{t} (report {n})" for n in range(4) for t in topic_titles()]
    ids = await seed_items(redis, keys, titles)
    small = passes(settings, clusterer_batch_size=4)
    consumers = [
        build_clusterer_consumer(small.model_copy(update={"consumer_name": f"c{n}"}), redis, keys)
        for n in range(3)
    ]
    stop = asyncio.Event()
    passing = asyncio.create_task(_pass_repeatedly(build_consolidator(small, redis, keys), stop))
    try:
        await run_consumers(consumers, lambda: drained(redis, keys))
    finally:
        stop.set()
        runs = await passing
    assert runs > 1
    await assert_each_item_in_one_cluster(redis, keys, ids)
    await build_consolidator(small, redis, keys).run()
    members = await assert_each_item_in_one_cluster(redis, keys, ids)
    assert len(members) == 3


async def test_recluster_all_forgets_the_graph_and_the_pass_cursor(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    from services.clusterer.lock import RedisLock
    from services.clusterer.recluster import Reclusterer

    await seed_items(redis, keys, topic_titles())
    await cluster(redis, keys, settings)
    await build_consolidator(settings, redis, keys).run()
    assert await redis.exists(keys.neighbour_graph("hashing-1024", TextKind.NATURAL))
    await Reclusterer(redis, keys, RedisLock(redis, keys.cluster_lock, 30_000)).recluster_all()
    assert not await redis.exists(keys.neighbour_graph("hashing-1024", TextKind.NATURAL))
    assert not await redis.exists(keys.graph_consolidated("hashing-1024", TextKind.NATURAL))


async def test_consolidate_command_runs_one_pass_and_says_what_it_did(
    redis: Redis, keys: Keys, settings: Settings, redis_url: str
) -> None:
    ids = await seed_items(redis, keys, topic_titles())
    await cluster(redis, keys, passes(settings, cluster_similarity_threshold=0.99))
    env = {**os.environ, "REDIS_URL": redis_url, "EMBEDDER": "hashing", "CLUSTER_RESOLUTION": "1"}
    command = [sys.executable, "-m", "services.cli", "--log-level", "WARNING", "consolidate", "--full"]
    result = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert '"kind": "natural"' in result.stdout and '"moved": 12' in result.stdout
    members = await assert_each_item_in_one_cluster(redis, keys, ids)
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]
