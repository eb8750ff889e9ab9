"""`Idempotency-Key`: a producer retrying after an unclear answer (a 503 whose entry was in fact stored)
names the same item again, so the worker records the retry as a duplicate instead of a second item.
Run through the real API (uvicorn) and the real ingest worker on a real Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from redis.asyncio import Redis

from services.ingest.normalized import EventContext
from shared.keys import IngestField, Keys
from shared.settings import Settings
from tests.shared.test_stream_contract import assert_ingest_entry_valid
from tests.support.pipeline import Pipeline, running_pipeline

KEY = {"Idempotency-Key": "7f3c2a10-retry-safe"}


@pytest.fixture
def pipeline(settings: Settings, redis: Redis) -> Iterator[Pipeline]:
    with running_pipeline(settings) as running:
        yield running


async def outcome(http: httpx.AsyncClient, event_id: str) -> dict[str, str]:
    body: dict[str, str] = (await http.get(f"/ingest/events/{event_id}")).json()
    return body


async def test_a_retry_with_the_same_key_is_a_duplicate_of_the_first_item(
    pipeline: Pipeline, redis: Redis, keys: Keys
) -> None:
    async with httpx.AsyncClient(base_url=pipeline.api_url) as http:
        first = (await http.post("/ingest/manual", json={"text": "Export hangs"}, headers=KEY)).json()
        retry = (await http.post("/ingest/manual", json={"text": "Export hangs"}, headers=KEY)).json()
        keyless = [
            (await http.post("/ingest/manual", json={"text": "Export hangs"})).json() for _ in range(2)
        ]
        pipeline.wait_until_ingested()
        created, duplicate = await outcome(http, first["event_id"]), await outcome(http, retry["event_id"])
        unkeyed = [await outcome(http, answer["event_id"]) for answer in keyless]
    assert (created["status"], duplicate["status"]) == ("created", "duplicate")
    assert duplicate["feedback_id"] == created["feedback_id"]
    assert [answer["status"] for answer in unkeyed] == ["created", "created"]
    assert await redis.zcard(keys.feedback_source("manual")) == 3
    entries = await redis.xrange(keys.ingest_stream)
    assert [fields.get(IngestField.IDEMPOTENCY_KEY) for _, fields in entries] == [
        KEY["Idempotency-Key"]
    ] * 2 + [
        None,
        None,
    ]


async def test_each_element_of_a_keyed_batch_is_its_own_item_and_a_retried_batch_duplicates_them(
    pipeline: Pipeline, redis: Redis, keys: Keys
) -> None:
    batch = {
        "items": [
            {"source": "billing", "title": "Refund failed"},
            {"source": "billing", "title": "Card declined"},
        ]
    }
    async with httpx.AsyncClient(base_url=pipeline.api_url) as http:
        first = (await http.post("/ingest/feedback", json=batch, headers=KEY)).json()["event_ids"]
        retry = (await http.post("/ingest/feedback", json=batch, headers=KEY)).json()["event_ids"]
        pipeline.wait_until_ingested()
        created = [await outcome(http, event_id) for event_id in first]
        repeated = [await outcome(http, event_id) for event_id in retry]
    assert [answer["status"] for answer in created] == ["created", "created"]
    assert [answer["status"] for answer in repeated] == ["duplicate", "duplicate"]
    assert [answer["feedback_id"] for answer in repeated] == [answer["feedback_id"] for answer in created]
    assert len({answer["feedback_id"] for answer in created}) == 2
    entries = [fields for _, fields in await redis.xrange(keys.ingest_stream)]
    for fields in entries:
        assert_ingest_entry_valid(fields)
    carried = [fields[IngestField.IDEMPOTENCY_KEY] for fields in entries]
    assert carried[:2] == [f"{KEY['Idempotency-Key']}#0", f"{KEY['Idempotency-Key']}#1"]


@pytest.mark.parametrize("key", ["has space", "x" * 129, "a#1", ""])
async def test_a_malformed_key_is_refused_and_nothing_is_appended(
    pipeline: Pipeline, redis: Redis, keys: Keys, key: str
) -> None:
    async with httpx.AsyncClient(base_url=pipeline.api_url) as http:
        response = await http.post("/ingest/manual", json={"text": "x"}, headers={"Idempotency-Key": key})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert await redis.xlen(keys.ingest_stream) == 0


def test_the_source_id_wins_over_the_key_and_the_key_over_the_entry_id() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    keyed = [EventContext(entry_id, now, "k-1") for entry_id in ("1-0", "2-0")]
    assert keyed[0].item_id("manual", None) == keyed[1].item_id("manual", None)
    assert keyed[0].item_id("manual", None) != keyed[0].item_id("feedback", None)
    assert keyed[0].item_id("github", "42") == EventContext("3-0", now).item_id("github", "42")
    assert EventContext("1-0", now).item_id("manual", None) != EventContext("2-0", now).item_id(
        "manual", None
    )
