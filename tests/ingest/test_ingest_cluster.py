"""The ingest write path on a real 3-master Redis Cluster with 6 partitions: the real API (over ASGI),
the real worker (in process and as `soulcaster ingest-worker` processes), exactly-once effects.

One cluster serves the whole module (it takes seconds to form); every test starts from empty nodes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ResponseError

from services.ingest.event_writer import EventWriter
from services.ingest.normalized import Normalized
from services.ingest.outcomes import read_outcome
from services.ingest.routing import routed
from services.ingest.worker import build_ingest_consumer
from shared.consumer import StreamConsumer, StreamMessage
from shared.keys import INGEST_GROUP, SCHEMA_VERSION, DeadLetterField, IngestField, Keys
from shared.models import FeedbackItem, item_id_for
from shared.publisher import IngestPublisher, RawEvent
from shared.redis_connection import connect
from shared.settings import Settings
from tests.api.conftest import client_for
from tests.support.drained import ingested
from tests.support.ingest_write_then_hang import WRITTEN
from tests.support.redis_cluster import ClusterNode, LocalRedisCluster
from tests.support.waiting import eventually, run_consumers

pytestmark = pytest.mark.slow

PARTITIONS = 6
INGEST_WORKER = [sys.executable, "-m", "services.cli", "--log-level", "WARNING", "ingest-worker"]


@pytest.fixture
def settings(cluster: LocalRedisCluster, settings: Settings) -> Settings:
    cluster.flush()
    return settings.model_copy(
        update={"redis_url": cluster.url, "redis_cluster": True, "ingest_partitions": PARTITIONS}
    )


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = connect(settings)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
def keys(settings: Settings) -> Keys:
    return settings.keys()


@pytest.fixture
async def api(settings: Settings, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(settings):
        yield client


def workers(settings: Settings, redis: Redis, name: str) -> list[StreamConsumer]:
    """One worker: a consumer per partition, as `soulcaster ingest-worker` builds them."""
    named = settings.model_copy(update={"consumer_name": name})
    return [build_ingest_consumer(named, redis, named.keys().partition(i)) for i in named.owned_partitions]


async def drain(settings: Settings, redis: Redis, names: Sequence[str] = ("w1",)) -> None:
    consumers = [consumer for name in names for consumer in workers(settings, redis, name)]
    for consumer in consumers:
        await consumer.ensure_group()
    await run_consumers(consumers, lambda: ingested(redis, settings.keys()))


async def stored_items(redis: Redis, keys: Keys) -> dict[str, int]:
    """Every created item id, with how many partitions' indexes and new-item streams hold it."""
    counts: dict[str, int] = {}
    for view in keys.partitions:
        for item_id in await redis.zrange(view.feedback_created, 0, -1):
            assert keys.partitioning.of(item_id) == view.index, f"{item_id} indexed in the wrong partition"
            counts[item_id] = counts.get(item_id, 0) + 1
        for _, fields in await redis.xrange(view.new_item_stream):
            counts[fields["id"]] = counts.get(fields["id"], 0) + 1
    return counts


Located = tuple[int, str]
"""(partition, entry id): an entry id is unique within its stream only, and two partitions' streams
may hand out the same one in the same millisecond."""


async def entries(redis: Redis, keys: Keys) -> dict[Located, dict[str, str]]:
    """Every ingest entry of every partition's stream."""
    found: dict[Located, dict[str, str]] = {}
    for view in keys.partitions:
        for entry_id, fields in await redis.xrange(view.ingest_stream):
            found[view.index, entry_id] = fields
    return found


async def outcomes(redis: Redis, keys: Keys) -> dict[Located, dict[str, str]]:
    return {
        (partition, entry_id): outcome
        for partition, entry_id in await entries(redis, keys)
        if (outcome := await read_outcome(redis, keys.partition(partition), entry_id)) is not None
    }


def feedback(n: int, external_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"source": "billing", "title": f"refund {n} failed", "body": f"customer {n}"}
    if external_id is not None:
        body["external_id"] = external_id
    return body


async def test_each_partition_stream_gets_its_share_and_the_masters_share_the_partitions(
    api: httpx.AsyncClient, redis: Redis, keys: Keys, cluster: LocalRedisCluster
) -> None:
    for start in range(0, 600, 100):
        batch = {"items": [feedback(n, f"inv-{n}") for n in range(start, start + 100)]}
        assert (await api.post("/ingest/feedback", json=batch)).status_code == 202

    lengths = [await redis.xlen(view.ingest_stream) for view in keys.partitions]
    print(f"entries per partition of 600: {lengths}")
    assert sum(lengths) == 600
    assert all(50 <= length <= 150 for length in lengths), lengths
    for node in cluster.nodes:
        with node.client() as plain:
            assert len(plain.keys("*stream:ingest")) == PARTITIONS // len(cluster.nodes)
    for (partition, entry_id), fields in (await entries(redis, keys)).items():
        assert keys.partitioning.of(fields[IngestField.ITEM_ID]) == partition, entry_id


async def test_a_batch_spanning_partitions_answers_qualified_event_ids_in_order(
    redis: Redis, keys: Keys
) -> None:
    publisher = IngestPublisher(redis, keys, producer="test")
    events = [routed(RawEvent.from_json("feedback", feedback(n, f"o-{n}"))) for n in range(30)]
    event_ids = await publisher.publish_many(events)
    found = await entries(redis, keys)
    located = [keys.partitioning.locate_event(event_id) for event_id in event_ids]
    assert [partition for partition, _ in located] == [keys.partitioning.of(e.item_id) for e in events]
    assert [json.loads(found[place][IngestField.PAYLOAD])["external_id"] for place in located] == [
        f"o-{n}" for n in range(30)
    ]
    assert len(found) == 30 and len({partition for partition, _ in found}) == PARTITIONS


async def test_the_same_entry_delivered_twice_changes_nothing(
    api: httpx.AsyncClient, redis: Redis, keys: Keys, settings: Settings, cluster: LocalRedisCluster
) -> None:
    batch = {"items": [feedback(n, f"r-{n}") for n in range(24)] + [feedback(99)]}
    event_ids = (await api.post("/ingest/feedback", json=batch)).json()["event_ids"]
    await drain(settings, redis)
    before = await stored_items(redis, keys)
    assert len(before) == 25 and set(before.values()) == {2}

    for node in cluster.nodes:  # the redelivery also finds the write script gone (NOSCRIPT)
        with node.client() as plain:
            plain.script_flush()
    found = await entries(redis, keys)
    for partition, consumer in enumerate(workers(settings, redis, "again")):
        redelivered = [
            StreamMessage(entry_id, fields, 2)
            for (place, entry_id), fields in found.items()
            if place == partition
        ]
        assert redelivered and await consumer._handler(redelivered) == {}
    assert await stored_items(redis, keys) == before
    recorded = await outcomes(redis, keys)
    assert sorted(keys.partitioning.event_id(*place) for place in recorded) == sorted(event_ids)
    assert {outcome["status"] for outcome in recorded.values()} == {"created"}


async def test_a_worker_sigkilled_between_its_write_and_its_ack_leaves_each_item_once(
    api: httpx.AsyncClient, redis: Redis, keys: Keys, settings: Settings
) -> None:
    batch = {"items": [feedback(n, f"k-{n}") for n in range(40)] + [feedback(n) for n in range(10)]}
    assert (await api.post("/ingest/feedback", json=batch)).status_code == 202
    doomed = start(
        [sys.executable, "-m", "tests.support.ingest_write_then_hang"], settings, "doomed", report=True
    )
    try:
        assert doomed.stdout is not None
        line = await asyncio.to_thread(doomed.stdout.readline)
        assert line.decode().strip() == WRITTEN
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
    finally:
        doomed.kill()
    written = await stored_items(redis, keys)
    pending = [
        (await redis.xpending(view.ingest_stream, INGEST_GROUP))["pending"] for view in keys.partitions
    ]
    assert len(written) == 50 and sum(pending) == 50, "killed too late to prove anything"

    survivor = start(INGEST_WORKER, settings, "survivor")
    try:
        await eventually(lambda: ingested(redis, keys), "the survivor to take over the pending entries")
    finally:
        survivor.terminate()
        survivor.wait(30)
    assert await stored_items(redis, keys) == written
    assert set(written.values()) == {2}
    recorded = await outcomes(redis, keys)
    assert len(recorded) == 50 and {o["status"] for o in recorded.values()} == {"created"}


async def test_several_workers_across_partitions_store_each_item_once_and_dedupe_exactly(
    api: httpx.AsyncClient, redis: Redis, keys: Keys, settings: Settings
) -> None:
    owners = {"all-1": range(6), "all-2": range(6), "low": range(3), "high": range(3, 6)}
    processes = [
        start(INGEST_WORKER, settings, name, f"{owned[0]}-{owned[-1]}") for name, owned in owners.items()
    ]

    async def all_reading() -> bool:
        for partition in keys.partitioning.all:
            expected = {name for name, owned in owners.items() if partition in owned}
            if not expected <= await consumers_of(redis, keys.partition(partition).ingest_stream):
                return False
        return True

    try:
        await eventually(all_reading, "every worker to read its partitions")
        for round_ in range(5):  # every round sends the same 40 external ids again, and 8 new notes
            batch = [feedback(n, f"d-{n}") for n in range(40)] + [
                feedback(100 * round_ + n) for n in range(8)
            ]
            assert (await api.post("/ingest/feedback", json={"items": batch})).status_code == 202
            for n in range(0, 40, 5):
                single = await api.post("/ingest/feedback", json=feedback(n, f"d-{n}"))
                assert single.status_code == 202
        await eventually(lambda: ingested(redis, keys), "four workers to drain six partitions")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)

    items = await stored_items(redis, keys)
    assert len(items) == 40 + 5 * 8 and set(items.values()) == {2}
    for n in range(40):
        item_id = item_id_for("billing", f"d-{n}", "")
        assert item_id in items
        assert await redis.get(keys.feedback_external("billing", f"d-{n}")) == item_id
    statuses = [outcome["status"] for outcome in (await outcomes(redis, keys)).values()]
    assert statuses.count("created") == 80
    assert statuses.count("duplicate") == 4 * 40 + 5 * 8


async def test_bad_input_is_refused_and_an_unprocessable_entry_is_dead_lettered_in_its_partition(
    api: httpx.AsyncClient, redis: Redis, keys: Keys, settings: Settings
) -> None:
    refused = await api.post(
        "/ingest/feedback", json={"items": [feedback(1), {"source": "BAD", "title": ""}]}
    )
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"][:3] == ["body", "items", 1]
    assert (await api.post("/ingest/manual", json={"title": "no text"})).status_code == 422
    assert sum([await redis.xlen(view.ingest_stream) for view in keys.partitions]) == 0

    publisher = IngestPublisher(redis, keys, producer="test")
    unprocessable = routed(RawEvent.from_json("manual", {"title": "no text"}))
    [bad] = await publisher.publish_many([unprocessable])
    bad_place = keys.partitioning.locate_event(bad)
    assert bad_place[0] == keys.partitioning.of(unprocessable.item_id)
    item_id = item_id_for("billing", "m-1", "")
    wrong = keys.partition((keys.partitioning.of(item_id) + 1) % PARTITIONS)
    misrouted = await redis.xadd(
        wrong.ingest_stream,
        {
            IngestField.VERSION: SCHEMA_VERSION,
            IngestField.SOURCE: "feedback",
            IngestField.PAYLOAD: json.dumps(feedback(1, "m-1")),
            IngestField.ITEM_ID: item_id,
        },
    )
    await drain(settings, redis)

    dead = {
        (view.index, fields[DeadLetterField.ORIGINAL_ID]): fields[DeadLetterField.ERROR]
        for view in keys.partitions
        for _, fields in await redis.xrange(view.ingest_dlq)
    }
    assert dead.keys() == {bad_place, (wrong.index, misrouted)}
    assert "text" in dead[bad_place]
    assert "belongs to partition" in dead[wrong.index, misrouted]
    recorded = await outcomes(redis, keys)
    assert {recorded[bad_place]["status"], recorded[wrong.index, misrouted]["status"]} == {"dead_lettered"}
    assert recorded[wrong.index, misrouted]["error"] == dead[wrong.index, misrouted]
    assert await stored_items(redis, keys) == {}
    assert await redis.exists(keys.feedback(item_id)) == 0


async def consumers_of(redis: Redis, stream: str) -> set[str]:
    try:
        return {consumer["name"] for consumer in await redis.xinfo_consumers(stream, INGEST_GROUP)}
    except ResponseError:  # no stream or no group yet
        return set()


def start(
    command: list[str], settings: Settings, name: str, owned: str = "", report: bool = False
) -> subprocess.Popen[bytes]:
    """A worker process of this test's cluster; with `report`, its stdout is a pipe to read."""
    env = {
        **os.environ,
        "REDIS_URL": settings.redis_url,
        "REDIS_CLUSTER": "true",
        "INGEST_PARTITIONS": str(PARTITIONS),
        "INGEST_PARTITIONS_OWNED": owned,
        "CONSUMER_NAME": name,
        "EMBEDDER": "hashing",
        "HEALTH_PORT": "0",
        "READ_BLOCK_MS": "100",
        "VISIBILITY_TIMEOUT_MS": "300",
        "RECLAIM_INTERVAL_MS": "100",
        "INGEST_BATCH_SIZE": "16",
    }
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE if report else subprocess.DEVNULL)


async def test_a_writer_with_a_stale_slot_map_follows_its_partition_to_another_master(
    cluster: LocalRedisCluster, redis: Redis, keys: Keys
) -> None:
    """A reshard moves a partition's slot: the packed call gets MOVED, refreshes the map and lands."""
    view = keys.partition(0)
    writer = EventWriter(redis, view, outcome_ttl_seconds=60)
    external_id = next(
        f"s-{n}" for n in range(100) if keys.partitioning.of(item_id_for("manual", f"s-{n}", "")) == 0
    )
    item = FeedbackItem(
        id=item_id_for("manual", external_id, ""),
        source="manual",
        external_id=external_id,
        title="moved",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    await writer.apply([writer.prepare("1767312000000-0", "", Normalized(item))])  # the map is learnt
    slot = key_slot(view.feedback_created.encode())
    source = owner_of(cluster, slot)
    target = next(node for node in cluster.nodes if node is not source)
    for node in (source, target):
        with node.client() as plain:
            plain.flushall()
    move_slot(cluster, slot, source, target)
    try:
        [applied] = await writer.apply([writer.prepare("1767312000001-0", "", Normalized(item))])
        assert applied.status == "created"
        with target.client() as plain:
            assert plain.hget(keys.feedback(item.id), "title") == "moved"
            assert plain.zrange(view.feedback_created, 0, -1) == [item.id]
    finally:
        with target.client() as plain:
            plain.flushall()
        move_slot(cluster, slot, target, source)


def owner_of(cluster: LocalRedisCluster, slot: int) -> ClusterNode:
    with cluster.nodes[0].client() as plain:
        ranges = plain.execute_command("CLUSTER SLOTS")
    port = next(int(hosts[1]) for first, last, hosts, *_ in ranges if first <= slot <= last)
    return next(node for node in cluster.nodes if node.port == port)


def move_slot(cluster: LocalRedisCluster, slot: int, source: ClusterNode, target: ClusterNode) -> None:
    """Redis's own procedure for one slot, without keys to migrate (the test emptied it)."""
    with source.client() as old, target.client() as new:
        old_id, new_id = old.execute_command("CLUSTER MYID"), new.execute_command("CLUSTER MYID")
        new.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", old_id)
        old.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", new_id)
    for node in (target, source, *[n for n in cluster.nodes if n not in (source, target)]):
        with node.client() as plain:
            plain.execute_command("CLUSTER SETSLOT", slot, "NODE", new_id)
    for node in cluster.nodes:
        with node.client() as plain:
            assert all(
                int(hosts[1]) == target.port
                for first, last, hosts, *_ in plain.execute_command("CLUSTER SLOTS")
                if first <= slot <= last
            )
