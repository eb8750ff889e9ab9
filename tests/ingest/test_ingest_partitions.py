"""Routing ingest events by partition (INGEST_PARTITIONS=3) on one redis-server: tagged names, real
API and workers. The same logic on a real Redis Cluster: tests/ingest/test_ingest_cluster.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.ingest.normalizers import NORMALIZERS
from services.ingest.outcomes import read_outcome
from services.ingest.replay import replay_partitions
from services.ingest.routing import routed
from services.ingest.worker import build_ingest_consumer
from shared.keys import SCHEMA_VERSION, DeadLetterField, IngestField, Keys
from shared.models import item_id_for
from shared.publisher import IngestPublisher, RawEvent, UnroutedEvent
from shared.settings import Settings
from tests.api.conftest import client_for
from tests.support.drained import ingested
from tests.support.paths import FIXTURES
from tests.support.waiting import run_consumers

PARTITIONS = 3


@pytest.fixture
def partitioned(settings: Settings) -> Settings:
    return settings.model_copy(update={"ingest_partitions": PARTITIONS})


@pytest.fixture
async def api(partitioned: Settings, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(partitioned):
        yield client


async def drain(settings: Settings, redis: Redis) -> None:
    keys = settings.keys()
    consumers = [build_ingest_consumer(settings, redis, keys.partition(i)) for i in keys.partitioning.all]
    for consumer in consumers:
        await consumer.ensure_group()
    await run_consumers(consumers, lambda: ingested(redis, keys))


async def entries_by_partition(redis: Redis, keys: Keys) -> list[list[dict[str, str]]]:
    return [[fields for _, fields in await redis.xrange(view.ingest_stream)] for view in keys.partitions]


async def test_the_api_routes_each_event_to_the_partition_of_the_item_it_becomes(
    api: httpx.AsyncClient, redis: Redis, partitioned: Settings
) -> None:
    keys = partitioned.keys()
    items = [
        {"source": "billing", "external_id": f"inv-{n}", "title": f"refund {n} failed"} for n in range(60)
    ]
    batch = await api.post("/ingest/feedback", json={"items": items})
    single = await api.post("/ingest/feedback", json=items[0])
    assert (batch.status_code, single.status_code) == (202, 202)

    streams = await entries_by_partition(redis, keys)
    assert sum(map(len, streams)) == 61
    for partition, entries in enumerate(streams):
        assert entries, f"partition {partition} received nothing of 61 events"
        for fields in entries:
            external_id = json.loads(fields[IngestField.PAYLOAD])["external_id"]
            assert fields[IngestField.ITEM_ID] == item_id_for("billing", external_id, "")
            assert keys.partitioning.of(fields[IngestField.ITEM_ID]) == partition

    await drain(partitioned, redis)
    first_item = item_id_for("billing", "inv-0", "")
    repeated = keys.partitioning.of(first_item)
    stored = [await redis.zcard(view.feedback_created) for view in keys.partitions]
    assert stored == [len(entries) - (p == repeated) for p, entries in enumerate(streams)]
    assert await redis.hget(keys.feedback(first_item), "title") == "refund 0 failed"


async def test_an_event_without_an_external_id_is_routed_by_a_minted_id_that_becomes_its_item(
    api: httpx.AsyncClient, redis: Redis, partitioned: Settings
) -> None:
    keys = partitioned.keys()
    answers = [await api.post("/ingest/manual", json={"text": f"export hangs {n}"}) for n in range(9)]
    event_ids = {answer.json()["event_id"] for answer in answers}
    await drain(partitioned, redis)

    seen: set[str] = set()
    for view in keys.partitions:
        for entry_id, fields in await redis.xrange(view.ingest_stream):
            outcome = await read_outcome(redis, view, entry_id)
            assert outcome is not None and outcome["status"] == "created"
            assert outcome["feedback_id"] == fields[IngestField.ITEM_ID]
            assert keys.partitioning.of(fields[IngestField.ITEM_ID]) == view.index
            assert await redis.exists(view.feedback(fields[IngestField.ITEM_ID])) == 1
            seen.add(keys.partitioning.event_id(view.index, entry_id))
    assert seen == event_ids
    assert sum([await redis.zcard(view.feedback_created) for view in keys.partitions]) == 9


async def test_a_github_page_is_routed_issue_by_issue_and_its_pull_request_is_skipped(
    api: httpx.AsyncClient, redis: Redis, partitioned: Settings
) -> None:
    keys = partitioned.keys()
    page = json.loads((FIXTURES / "github" / "rest_issues_page1.json").read_text())
    answer = await api.post("/ingest/github", json=page, headers={"Idempotency-Key": "sync-1"})
    assert answer.status_code == 202 and answer.json()["skipped_pull_requests"] == 1
    await drain(partitioned, redis)

    issues = [issue for issue in page if "pull_request" not in issue]
    for issue in issues:
        item_id = item_id_for("github", str(issue["id"]), "")
        view = keys.for_item(item_id)
        [fields] = [f for _, f in await redis.xrange(view.ingest_stream) if f[IngestField.ITEM_ID] == item_id]
        assert json.loads(fields[IngestField.PAYLOAD])["id"] == issue["id"]
        assert await redis.zscore(view.feedback_created, item_id) is not None
    assert sum([await redis.xlen(view.ingest_stream) for view in keys.partitions]) == len(issues)


async def test_a_keyed_retry_lands_in_the_same_partition_and_is_a_duplicate(
    api: httpx.AsyncClient, redis: Redis, partitioned: Settings
) -> None:
    keys = partitioned.keys()
    headers = {"Idempotency-Key": "retry-me-7"}
    for _ in range(3):
        assert (
            await api.post("/ingest/manual", json={"text": "login loop"}, headers=headers)
        ).status_code == 202
    streams = await entries_by_partition(redis, keys)
    [partition] = [p for p, entries in enumerate(streams) if entries]
    assert len(streams[partition]) == 3
    await drain(partitioned, redis)
    view = keys.partition(partition)
    outcomes = [
        await read_outcome(redis, view, entry_id) for entry_id, _ in await redis.xrange(view.ingest_stream)
    ]
    assert [o["status"] for o in outcomes if o] == ["created", "duplicate", "duplicate"]


async def test_a_direct_publisher_routes_with_the_same_function_and_must_not_skip_it(
    redis: Redis, partitioned: Settings
) -> None:
    keys = partitioned.keys()
    publisher = IngestPublisher(redis, keys, producer="test")
    event = RawEvent.from_json("feedback", {"source": "crm", "external_id": "c-1", "title": "slow"})
    with pytest.raises(UnroutedEvent):
        await publisher.publish(event)

    event_ids = await publisher.publish_many(
        [routed(event), routed(RawEvent.from_json("manual", {"no": "text"}))]
    )
    entry_ids = [keys.partitioning.locate_event(event_id)[1] for event_id in event_ids]
    expected = keys.partitioning.of(item_id_for("crm", "c-1", ""))
    assert event_ids[0] == f"{expected}:{entry_ids[0]}"
    assert [e for e, _ in await redis.xrange(keys.partition(expected).ingest_stream)][:1] == entry_ids[:1]

    await drain(partitioned, redis)
    assert await redis.hget(keys.feedback(item_id_for("crm", "c-1", "")), "title") == "slow"
    dead = [fields for view in keys.partitions for _, fields in await redis.xrange(view.ingest_dlq)]
    assert [fields[DeadLetterField.ORIGINAL_ID] for fields in dead] == [entry_ids[1]]
    assert "text" in dead[0][DeadLetterField.ERROR]


async def test_an_entry_in_the_wrong_partition_stream_is_dead_lettered_and_writes_nothing(
    redis: Redis, partitioned: Settings
) -> None:
    keys = partitioned.keys()
    item_id = item_id_for("feedback", "w-1", "")
    home = keys.partitioning.of(item_id)
    wrong = keys.partition((home + 1) % PARTITIONS)
    fields = entry_fields("feedback", {"source": "feedback", "external_id": "w-1", "title": "x"}, item_id)
    entry_id = await redis.xadd(wrong.ingest_stream, fields)  # type: ignore[arg-type]

    await drain(partitioned, redis)

    [(_, dead)] = await redis.xrange(wrong.ingest_dlq)
    assert dead[DeadLetterField.ORIGINAL_ID] == entry_id
    assert f"belongs to partition {home}, not to partition {wrong.index}" in dead[DeadLetterField.ERROR]
    outcome = await read_outcome(redis, wrong, entry_id)
    assert outcome is not None and outcome["status"] == "dead_lettered"
    assert await redis.exists(keys.feedback(item_id), keys.feedback_external("feedback", "w-1")) == 0
    assert [await redis.zcard(view.feedback_created) for view in keys.partitions] == [0, 0, 0]


async def test_an_item_id_field_that_is_no_uuid_is_dead_lettered(redis: Redis, partitioned: Settings) -> None:
    keys = partitioned.keys()
    entry_id = await redis.xadd(
        keys.partition(0).ingest_stream,
        entry_fields("manual", {"text": "x"}, "feedback:created"),  # type: ignore[arg-type]
    )
    await drain(partitioned, redis)
    [(_, dead)] = await redis.xrange(keys.partition(0).ingest_dlq)
    assert dead[DeadLetterField.ORIGINAL_ID] == entry_id
    assert "is not a UUID" in dead[DeadLetterField.ERROR]


async def test_a_single_node_publisher_writes_the_entry_fields_of_before(redis: Redis) -> None:
    """No `item_id` with one untagged partition, even when the event carries one."""
    publisher = IngestPublisher(redis, Keys(), producer="test")
    await publisher.publish(routed(RawEvent.from_json("manual", {"text": "x"}, "req-1", "key-1")))
    await publisher.publish_many([RawEvent.from_json("manual", {"text": "y"})])
    [(_, first), (_, second)] = await redis.xrange(Keys().ingest_stream)
    today = {
        IngestField.VERSION,
        IngestField.SOURCE,
        IngestField.PAYLOAD,
        IngestField.RECEIVED_AT,
        IngestField.PRODUCER,
        IngestField.REQUEST_ID,
    }
    assert set(first) == today | {IngestField.IDEMPOTENCY_KEY}
    assert set(second) == today


def entry_fields(source: str, payload: dict[str, Any], item_id: str) -> dict[str, str]:
    return {
        IngestField.VERSION: SCHEMA_VERSION,
        IngestField.SOURCE: source,
        IngestField.PAYLOAD: json.dumps(payload),
        IngestField.ITEM_ID: item_id,
    }


async def test_a_batch_gets_one_distinct_event_id_per_event_that_names_its_partition(
    api: httpx.AsyncClient, redis: Redis, partitioned: Settings
) -> None:
    """Every partition's share of one batch is appended in the same millisecond, so entry ids repeat
    across partitions: only the partition-qualified event id names one event."""
    batch = {"items": [{"source": "crm", "external_id": f"q-{n}", "title": f"slow {n}"} for n in range(12)]}
    event_ids = (await api.post("/ingest/feedback", json=batch)).json()["event_ids"]
    assert len(set(event_ids)) == 12
    assert {event_id.split(":")[0] for event_id in event_ids} == {"0", "1", "2"}
    await drain(partitioned, redis)

    for n, event_id in enumerate(event_ids):
        found = (await api.get(f"/ingest/events/{event_id}")).json()
        assert found["status"] == "created" and found["event_id"] == event_id
        assert found["feedback_id"] == item_id_for("crm", f"q-{n}", "")
    entry_id = event_ids[0].split(":")[1]
    assert (await api.get(f"/ingest/events/{entry_id}")).json()["status"] == "created"
    assert (await api.get(f"/ingest/events/7:{entry_id}")).status_code == 404
    assert (await api.get(f"/ingest/events/x:{entry_id}")).status_code == 422


async def test_a_replay_refuses_an_entry_of_another_partition_and_writes_nothing(
    redis: Redis, partitioned: Settings
) -> None:
    """Replay checks the partition as the worker does: the entry is reported by its event id."""
    keys = partitioned.keys()
    item_id = item_id_for("feedback", "w-2", "")
    wrong = keys.partition((keys.partitioning.of(item_id) + 1) % PARTITIONS)
    fields = entry_fields("feedback", {"source": "feedback", "external_id": "w-2", "title": "x"}, item_id)
    entry_id = await redis.xadd(wrong.ingest_stream, fields)  # type: ignore[arg-type]

    report = await replay_partitions(redis, keys.partitions, NORMALIZERS, 60)

    assert list(report.invalid) == [f"{wrong.index}:{entry_id}"]
    assert "belongs to partition" in report.invalid[f"{wrong.index}:{entry_id}"]
    assert await redis.exists(keys.feedback(item_id), keys.feedback_external("feedback", "w-2")) == 0
