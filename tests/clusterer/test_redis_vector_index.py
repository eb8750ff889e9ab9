"""The default vector index against real Redis: exact rows below VECTOR_ANN_MIN, an HNSW graph
above, snapshots that replace the log's history, and replicas that start from them or fall behind
a trim."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from redis.asyncio import Redis

from services.clusterer.embedders.hashing import HashingEmbedder
from services.clusterer.providers import build_vector_index
from services.clusterer.vector_index.base import Match, VectorRecord
from services.clusterer.vector_index.local_copy import CopyImage, IndexTuning
from services.clusterer.vector_index.redis_index import RedisVectorIndex, SnapshotPolicy
from services.clusterer.vector_index.snapshots import Manifest, SnapshotStore
from shared.keys import Keys
from shared.redis_connection import binary_twin
from shared.settings import Settings

NAME = "test"
GRAPH = IndexTuning(ann_min=50, search_ef=128)
EXACT = IndexTuning(ann_min=10**9)


def unit_rows(count: int, dimensions: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, dimensions)).astype(np.float32)
    normalised: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


def index(
    redis: Redis, tuning: IndexTuning, dimensions: int = 16, every: int = 10**9, chunk_bytes: int = 4096
) -> RedisVectorIndex:
    policy = SnapshotPolicy(every=every, chunk_bytes=chunk_bytes)
    return RedisVectorIndex(binary_twin(redis), Keys(), NAME, dimensions, tuning, policy)


async def upsert_rows(target: RedisVectorIndex, rows: np.ndarray, first: int = 0, batch: int = 100) -> None:
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        await target.upsert(
            [
                VectorRecord(f"i{first + start + n}", v, f"c{(first + start + n) % 7}")
                for n, v in enumerate(chunk)
            ]
        )


def answers(found: list[list[Match]]) -> list[list[tuple[str, float, str]]]:
    return [[(m.id, round(m.score, 5), m.cluster_id) for m in row] for row in found]


def snapshot_loads(caplog: pytest.LogCaptureFixture) -> int:
    return sum(record.getMessage() == "vector snapshot loaded" for record in caplog.records)


async def manifest(redis: Redis) -> Manifest | None:
    return await SnapshotStore(binary_twin(redis), Keys(), NAME).manifest()


async def test_the_graph_finds_most_of_the_exact_top_ten(redis: Redis) -> None:
    vectors = unit_rows(3000, 32, seed=1)
    graph = index(redis, GRAPH, dimensions=32)
    await upsert_rows(graph, vectors, batch=500)
    queries = unit_rows(200, 32, seed=2)
    found = await graph.query(queries, top_k=10)

    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    hits = sum(
        len({m.id for m in row} & {f"i{n}" for n in truth}) for row, truth in zip(found, exact, strict=True)
    )
    assert graph.uses_graph and len(graph) == 3000
    assert hits / exact.size >= 0.9
    assert all(
        m.score == pytest.approx(float(queries[q] @ vectors[int(m.id[1:])]), abs=1e-5)
        and m.cluster_id == f"c{int(m.id[1:]) % 7}"
        for q, row in enumerate(found)
        for m in row
    )
    assert all([m.score for m in row] == sorted((m.score for m in row), reverse=True) for row in found)


async def test_below_the_threshold_the_copy_stays_exact(redis: Redis) -> None:
    vectors = unit_rows(400, 16, seed=3)
    exact = index(redis, IndexTuning(ann_min=401))
    await upsert_rows(exact, vectors)
    queries = unit_rows(20, 16, seed=4)
    found = await exact.query(queries, top_k=5)
    expected = np.argsort(-(queries @ vectors.T), axis=1)[:, :5]
    assert not exact.uses_graph
    assert [[m.id for m in row] for row in found] == [[f"i{n}" for n in row] for row in expected]

    await upsert_rows(exact, unit_rows(1, 16, seed=5), first=400)  # the 401st item builds the graph
    assert exact.uses_graph and len(exact) == 401
    stored = await exact.vectors(["i0", "i399"])
    np.testing.assert_array_equal(stored["i0"], vectors[0])
    np.testing.assert_array_equal(stored["i399"], vectors[399])


@pytest.mark.parametrize("tuning", [GRAPH, EXACT], ids=["graph", "exact"])
async def test_upserting_a_known_id_replaces_its_vector_and_cluster(
    redis: Redis, tuning: IndexTuning
) -> None:
    vectors = unit_rows(200, 16, seed=6)
    target = index(redis, tuning)
    await upsert_rows(target, vectors)
    replacement = unit_rows(1, 16, seed=7)[0]
    await target.upsert([VectorRecord("i5", replacement, "moved")])

    ((best, *_),) = await target.query(replacement[None, :], top_k=3)
    old = await target.query(vectors[5][None, :], top_k=200)
    assert (best.id, best.cluster_id, len(target)) == ("i5", "moved", 200)
    assert best.score == pytest.approx(1.0, abs=1e-5)
    assert [m.score for m in old[0] if m.id == "i5"] == [
        pytest.approx(float(vectors[5] @ replacement), abs=1e-5)
    ]
    np.testing.assert_array_equal((await target.vectors(["i5"]))["i5"], replacement)


@pytest.mark.parametrize("tuning", [GRAPH, EXACT], ids=["graph", "exact"])
async def test_reassign_changes_the_cluster_and_keeps_the_vector(redis: Redis, tuning: IndexTuning) -> None:
    vectors = unit_rows(120, 16, seed=8)
    target = index(redis, tuning)
    await upsert_rows(target, vectors)
    await target.reassign(["i1", "i2", "missing"], "merged")

    found = await target.query(vectors[1:3], top_k=1)
    assert [(row[0].id, row[0].cluster_id) for row in found] == [("i1", "merged"), ("i2", "merged")]
    assert len(target) == 120
    stored = await target.vectors(["i1", "missing"])
    assert list(stored) == ["i1"]
    np.testing.assert_array_equal(stored["i1"], vectors[1])


@pytest.mark.parametrize("tuning", [GRAPH, EXACT], ids=["graph", "exact"])
async def test_a_snapshot_trims_the_log_and_a_new_replica_starts_from_it(
    redis: Redis, tuning: IndexTuning
) -> None:
    vectors = unit_rows(1250, 16, seed=9)
    writer = index(redis, tuning, every=500)
    await upsert_rows(writer, vectors)  # batches of 100
    await writer.reassign(["i0"], "after-the-snapshot")  # in the tail only

    # Exact: snapshots at 500 and 1000 vectors. Graph: when it is built (at 100), then 600, 1100.
    covered, tail = (1100, 2) if tuning is GRAPH else (1000, 3)
    snapshot = await manifest(redis)
    assert snapshot is not None
    assert (snapshot.upserted, snapshot.count, snapshot.storage) == (
        covered,
        covered,
        "hnsw" if tuning is GRAPH else "exact",
    )
    assert snapshot.chunks > 1  # 4 KB chunks
    log = Keys().vectors(NAME)
    first = await binary_twin(redis).xrange(log, count=1)
    assert first[0][0] == snapshot.entry  # everything below the snapshot's entry is gone
    assert await redis.xlen(log) == 1 + tail + 1  # the snapshot's own entry, the tail, the reassign
    chunk_keys = {key async for key in redis.scan_iter(match=f"{Keys().vector_snapshot(NAME)}:*")}
    assert chunk_keys == {
        Keys().vector_snapshot_chunk(NAME, snapshot.entry.decode(), n) for n in range(snapshot.chunks)
    }  # the first snapshot's chunks were deleted
    assert [await redis.ttl(key) for key in sorted(chunk_keys)] == [-1] * snapshot.chunks  # kept

    replica = index(redis, tuning)
    queries = np.concatenate([vectors[:3], unit_rows(30, 16, seed=10)])
    assert answers(await replica.query(queries, top_k=8)) == answers(await writer.query(queries, top_k=8))
    assert len(replica) == 1250 and replica.uses_graph == writer.uses_graph
    assert (await replica.query(vectors[:1], top_k=1))[0][0].cluster_id == "after-the-snapshot"
    stored = await replica.vectors(["i3", "i1249"])
    np.testing.assert_array_equal(stored["i3"], vectors[3])
    np.testing.assert_array_equal(stored["i1249"], vectors[1249])


async def test_a_replica_behind_a_trim_loads_the_snapshot_again(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    vectors = unit_rows(900, 16, seed=11)
    writer = index(redis, GRAPH, every=400)
    behind = index(redis, GRAPH)
    await upsert_rows(writer, vectors[:100])
    await behind.sync()  # it has seen the first 100 items, then the log moves on without it
    await upsert_rows(writer, vectors[100:], first=100)
    assert snapshot_loads(caplog) == 0

    snapshot = await manifest(redis)
    assert snapshot is not None and snapshot.upserted == 900  # at 100 (the graph), 500, 900
    queries = unit_rows(25, 16, seed=12)
    assert answers(await behind.query(queries, top_k=6)) == answers(await writer.query(queries, top_k=6))
    assert len(behind) == 900
    assert snapshot_loads(caplog) == 1


async def test_a_replica_exactly_before_the_snapshot_entry_only_replays(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """The trim took only entries it had applied, so it reads on from its position."""
    caplog.set_level(logging.INFO)
    vectors = unit_rows(500, 16, seed=13)
    writer = index(redis, EXACT, every=500)
    follower = index(redis, EXACT)
    await upsert_rows(writer, vectors[:400])
    await follower.sync()
    await upsert_rows(writer, vectors[400:], first=400)  # one entry, then the snapshot, then the trim
    await writer.reassign(["i7"], "tail")

    snapshot = await manifest(redis)
    assert snapshot is not None and snapshot.upserted == 500
    assert answers(await follower.query(vectors[:8], top_k=3)) == answers(
        await writer.query(vectors[:8], top_k=3)
    )
    assert len(follower) == 500 and snapshot_loads(caplog) == 0
    assert (await follower.query(vectors[7:8], top_k=1))[0][0].cluster_id == "tail"


async def test_the_graph_is_snapshotted_once_built_so_replicas_never_rebuild_it_from_the_log(
    redis: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    vectors = unit_rows(300, 16, seed=14)
    writer = index(redis, GRAPH)  # snapshots every 10**9 vectors, but the graph (at 50) is new
    await upsert_rows(writer, vectors[:40], batch=20)
    assert await manifest(redis) is None  # exact rows: nothing to save yet
    await upsert_rows(writer, vectors[40:], first=40, batch=20)

    snapshot = await manifest(redis)
    assert snapshot is not None and (snapshot.storage, snapshot.count) == ("hnsw", 60)  # once, at 60
    replica = index(redis, GRAPH)
    queries = unit_rows(10, 16, seed=15)
    assert answers(await replica.query(queries, top_k=5)) == answers(await writer.query(queries, top_k=5))
    assert snapshot_loads(caplog) == 1 and len(replica) == 300


async def test_a_snapshot_switch_refuses_a_stale_manifest_and_keeps_nothing(
    redis: Redis, tmp_path: Path
) -> None:
    binary = binary_twin(redis)
    store = SnapshotStore(binary, Keys(), NAME, chunk_bytes=4)
    (tmp_path / "written").write_bytes(bytes(range(32)))
    image = CopyImage("exact", b"a\nb", b"c\nc", tmp_path / "written", 32)
    first = Manifest(b"5-0", b"4-0", 2, 2, 4, "exact", store.chunk_count(image), 3, 3, 32)
    assert first.chunks == 10  # 38 bytes in chunks of 4
    assert await store.write(image, first, replaces=None)
    second = Manifest(b"9-0", b"8-0", 2, 2, 4, "exact", store.chunk_count(image), 3, 3, 32)
    assert not await store.write(image, second, replaces=None)  # another writer switched first

    assert await store.manifest() == first
    read = await store.read(first, tmp_path / "read")
    assert read is not None and (read.ids, read.clusters) == (b"a\nb", b"c\nc")
    assert read.payload.read_bytes() == bytes(range(32))
    stored = {key async for key in redis.scan_iter(match=f"{store.manifest_key}:*")}
    assert stored == {Keys().vector_snapshot_chunk(NAME, "5-0", n) for n in range(first.chunks)}


async def test_the_settings_choose_the_threshold_and_the_snapshot_interval(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    embedder = HashingEmbedder()
    tuned = settings.model_copy(update={"vector_ann_min": 10, "vector_snapshot_every": 20})
    built = build_vector_index(tuned, redis, keys, embedder)
    assert isinstance(built, RedisVectorIndex)
    vectors = embedder.embed([f"item number {n} about topic {n % 3}" for n in range(25)])
    await built.upsert([VectorRecord(f"i{n}", v, "c") for n, v in enumerate(vectors)])

    snapshot = await SnapshotStore(binary_twin(redis), keys, embedder.name).manifest()
    assert built.uses_graph
    assert snapshot is not None and (snapshot.count, snapshot.storage) == (25, "hnsw")
