"""The vector index's snapshots on a real 3-master Redis Cluster: the switch script and the paged
reads name only keys of the log's slot (`{clusters}`), so a cluster runs them as one node does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from services.clusterer.vector_index.redis_index import RedisVectorIndex, SnapshotPolicy
from services.clusterer.vector_index.snapshots import SnapshotStore
from shared.keys import Keys
from shared.redis_connection import binary_twin, connect
from shared.settings import Settings
from tests.clusterer.test_redis_vector_index import GRAPH, NAME, answers, unit_rows, upsert_rows
from tests.support.redis_cluster import LocalRedisCluster

pytestmark = pytest.mark.slow


@pytest.fixture
def on_cluster(cluster: LocalRedisCluster, settings: Settings) -> Settings:
    cluster.flush()
    return settings.model_copy(
        update={"redis_url": cluster.url, "redis_cluster": True, "ingest_partitions": 3}
    )


@pytest.fixture
async def binary(on_cluster: Settings) -> AsyncIterator[Redis]:
    client = connect(on_cluster)
    await client.ping()
    twin = binary_twin(client)
    try:
        yield twin
    finally:
        await twin.aclose()
        await client.aclose()


def index(redis: Redis, keys: Keys, every: int = 10**9) -> RedisVectorIndex:
    return RedisVectorIndex(redis, keys, NAME, 16, GRAPH, SnapshotPolicy(every=every, chunk_bytes=4096))


async def test_a_replica_starts_from_a_snapshot_written_on_the_cluster(
    binary: Redis, on_cluster: Settings
) -> None:
    keys = on_cluster.keys()
    vectors = unit_rows(900, 16, seed=21)
    writer = index(binary, keys, every=400)
    behind = index(binary, keys)
    await upsert_rows(writer, vectors[:100])
    await behind.sync()
    await upsert_rows(writer, vectors[100:], first=100)

    snapshot = await SnapshotStore(binary, keys, NAME).manifest()
    assert snapshot is not None and snapshot.upserted == 900 and snapshot.chunks > 1
    assert key_slot(keys.vector_snapshot(NAME).encode()) == key_slot(keys.vectors(NAME).encode())
    queries = np.concatenate([vectors[:3], unit_rows(20, 16, seed=22)])
    expected = answers(await writer.query(queries, top_k=6))
    assert answers(await index(binary, keys).query(queries, top_k=6)) == expected  # a new replica
    assert answers(await behind.query(queries, top_k=6)) == expected  # one behind the trim
