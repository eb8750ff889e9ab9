"""Reads and operator views that span partitions, on a real 3-master Redis Cluster (3 partitions, one
per master): the same answers as one partition, each partition's keys read on its own master."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from shared.keys import INGEST_GROUP
from shared.settings import Settings
from tests.api.conftest import client_for
from tests.support.partitioned_feedback import sample_items, write_items
from tests.support.redis_cluster import LocalRedisCluster

pytestmark = pytest.mark.slow  # a cluster of three real servers takes seconds to form

ITEMS = sample_items(30)


@pytest.fixture
async def cluster_redis(cluster: LocalRedisCluster) -> AsyncIterator[Redis]:
    cluster.flush()
    client = RedisCluster.from_url(cluster.url, decode_responses=True)
    await client.initialize()
    try:
        yield client  # type: ignore[misc]  # the cluster client speaks Redis's commands
    finally:
        await client.aclose()


def on_cluster(settings: Settings, cluster: LocalRedisCluster, partitions: int, prefix: str = "") -> Settings:
    update = {"redis_url": cluster.url, "redis_cluster": True, "ingest_partitions": partitions}
    return settings.model_copy(update={**update, "key_prefix": prefix})


@pytest.fixture
async def apis(
    settings: Settings, cluster: LocalRedisCluster, cluster_redis: Redis
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """The API on 3 partitions and, as the reference, on one (another prefix), over the same items."""
    split, single = on_cluster(settings, cluster, 3), on_cluster(settings, cluster, 1, "ref:")
    await write_items(cluster_redis, split.keys(), ITEMS, unclustered=7)
    await write_items(cluster_redis, single.keys(), ITEMS, unclustered=7)
    async for split_api in client_for(split):
        async for single_api in client_for(single):
            yield split_api, single_api


async def pages(api: httpx.AsyncClient, **query: str) -> list[dict[str, object]]:
    found, cursor = [], None
    while True:
        params = {"limit": "4", **query, **({"cursor": cursor} if cursor else {})}
        response = await api.get("/feedback", params=params)
        assert response.status_code == 200, response.text
        found.append(response.json())
        if (cursor := found[-1]["next_cursor"]) is None:  # type: ignore[assignment]
            return found


def masters_of(cluster: LocalRedisCluster, keys: list[str]) -> list[tuple[str, str]]:
    """(address, node id) of the master serving each key, from the cluster's own slot table."""
    with cluster.nodes[0].client() as plain:
        ranges = plain.execute_command("CLUSTER SLOTS")
    found = []
    for key in keys:
        slot = key_slot(key.encode())
        host = next(hosts for first, last, hosts, *_ in ranges if first <= slot <= last)
        found.append((f"{host[0]}:{host[1]}", str(host[2])))
    return found


def test_each_partition_lives_on_its_own_master(settings: Settings, cluster: LocalRedisCluster) -> None:
    keys = on_cluster(settings, cluster, 3).keys()
    assert len(set(masters_of(cluster, [part.feedback_created for part in keys.partitions]))) == 3


async def test_feedback_pages_on_the_cluster_match_one_partition(
    apis: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    split, single = apis
    for query in ({}, {"source": "sentry"}):
        answer = await pages(split, **query)
        assert answer == await pages(single, **query)
        assert sum(len(page["items"]) for page in answer) == answer[0]["total"] > 0  # type: ignore[arg-type]
    offset = {"limit": "5", "offset": "12"}
    assert (await split.get("/feedback", params=offset)).json() == (
        await single.get("/feedback", params=offset)
    ).json()
    assert (await split.get(f"/feedback/{ITEMS[3].id}")).json()["title"] == ITEMS[3].title


async def test_stats_on_the_cluster_sum_every_partition(
    apis: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    split, single = apis
    stats = (await split.get("/stats")).json()
    assert stats["feedback"] == (await single.get("/stats")).json()["feedback"]
    assert stats["feedback"]["total"] == len(ITEMS) and stats["feedback"]["unclustered"] == 7
    assert len(stats["streams"]) == 6


async def test_an_event_is_found_on_whichever_master_holds_its_partition(
    settings: Settings,
    cluster: LocalRedisCluster,
    cluster_redis: Redis,
    apis: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    split, _ = apis
    keys = on_cluster(settings, cluster, 3).keys()
    recorded = "1767312000000-0"
    outcome = json.dumps({"status": "duplicate", "feedback_id": ITEMS[1].id})
    await cluster_redis.hset(keys.partition(1).event_outcomes(recorded), recorded, outcome)
    waiting = await cluster_redis.xadd(keys.partition(2).ingest_stream, {"v": "1"})

    found = (await split.get(f"/ingest/events/{recorded}")).json()
    assert found == {"event_id": recorded, "status": "duplicate", "feedback_id": ITEMS[1].id}
    assert (await split.get(f"/ingest/events/{waiting}")).json()["status"] == "pending"
    assert (await split.get("/ingest/events/1767312000002-0")).status_code == 404


def soulcaster(cluster: LocalRedisCluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": cluster.url, "REDIS_CLUSTER": "true", "INGEST_PARTITIONS": "3"}
    command = [sys.executable, "-m", "services.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


async def test_streams_and_partitions_on_the_cluster(
    settings: Settings, cluster: LocalRedisCluster, cluster_redis: Redis
) -> None:
    keys = on_cluster(settings, cluster, 3).keys()
    for part, count in zip(keys.partitions, (1, 2, 3), strict=True):
        for n in range(count):
            await cluster_redis.xadd(part.ingest_stream, {"n": str(n)})
        await cluster_redis.xgroup_create(part.ingest_stream, INGEST_GROUP, id="0")

    streams = soulcaster(cluster, "streams")
    assert streams.returncode == 0, streams.stderr
    [total] = [
        line.split() for line in streams.stdout.splitlines() if line.startswith("total(stream:ingest) ")
    ]
    assert total[1:6] == ["6", "0", "ingest", "6", "0"]

    placed = soulcaster(cluster, "partitions")
    assert placed.returncode == 0, placed.stderr
    rows = {line.split()[0]: line.split() for line in placed.stdout.splitlines()[1:4]}
    assert {row[3] for row in rows.values()} == {node.address for node in cluster.nodes}, placed.stdout
    assert [rows[str(i)][5] for i in range(3)] == ["1", "2", "3"]
    expected = masters_of(cluster, [part.ingest_stream for part in keys.partitions])
    assert [(rows[str(i)][3], rows[str(i)][4]) for i in range(3)] == expected
    assert "total: 3 partitions, 6 ingest entries, 0 new-item entries" in placed.stdout


async def test_the_empty_prefix_hint_scans_every_master_and_names_the_prefix(
    settings: Settings, cluster: LocalRedisCluster, cluster_redis: Redis
) -> None:
    dev = on_cluster(settings, cluster, 3, "dev:").keys()
    for part in dev.partitions:
        await cluster_redis.xadd(part.ingest_stream, {"n": "1"})
    listed = soulcaster(cluster, "dlq", "list")
    assert listed.returncode == 0, listed.stderr
    assert "keys exist under the prefix 'dev:'" in listed.stdout, listed.stdout
