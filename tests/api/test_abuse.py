"""The abuse run: valid traffic interleaved with hostile requests through the real API and the real
ingest worker on a real Redis. At the end every 202 has a final outcome (created, duplicate, updated,
unchanged, ignored, or dead-lettered with its reason), every hostile request was a 4xx that appended
nothing, and no valid event was dead-lettered because of a neighbour."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.ingest.outcomes import Outcome
from shared.keys import SCHEMA_VERSION, IngestField, Keys
from shared.settings import Settings
from tests.support.paths import FIXTURES
from tests.support.pipeline import Pipeline, running_pipeline

FINAL = {Outcome.CREATED, Outcome.DUPLICATE, Outcome.UPDATED, Outcome.UNCHANGED, Outcome.IGNORED}


def fixture(*parts: str) -> Any:
    return json.loads(FIXTURES.joinpath(*parts).read_text())


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def valid_feedback(n: int) -> dict[str, Any]:
    return {"source": "billing", "title": f"Refund {n} failed", "external_id": f"r-{n}"}


def github_edit() -> dict[str, Any]:
    """The edited delivery with a newer revision and a new title, so that it changes the item."""
    edited: dict[str, Any] = fixture("github", "issues_edited.json")
    edited["issue"] |= {"title": "Spelling error in the README", "updated_at": "2019-05-16T00:00:00Z"}
    return edited


GITHUB = {"X-GitHub-Event": "issues"}
VALID: list[tuple[str, Any, dict[str, str]]] = [
    *[("/ingest/manual", {"text": f"Export {n} hangs"}, {}) for n in range(10)],
    ("/ingest/feedback", {"items": [valid_feedback(n) for n in range(30)]}, {}),
    ("/ingest/feedback", valid_feedback(3), {}),  # a duplicate of a batch element
    ("/ingest/reddit", fixture("reddit", "listing_new.json")["data"]["children"], {}),
    ("/ingest/reddit", fixture("reddit", "listing_new.json")["data"]["children"][0], {}),  # seen again
    ("/ingest/sentry", fixture("sentry", "issue_created.json"), {}),
    ("/ingest/github", fixture("github", "issues_opened.json"), GITHUB),
    ("/ingest/github", github_edit(), GITHUB),
    ("/ingest/github", [fixture("github", "rest_issue_closed.json")], {}),  # closed, never seen: ignored
    ("/ingest/manual", {"text": "ok \U0001f600 fine"}, {}),
]
HOSTILE: list[tuple[str, bytes, dict[str, str]]] = [
    ("/ingest/manual", json.dumps({"text": "x", "metadata": {"a": nested(300)}}).encode(), {}),
    (
        "/ingest/feedback",
        b'{"items": ['
        + b",".join(json.dumps(valid_feedback(100 + n)).encode() for n in range(30))
        + b', {"source": "x", "title": "\\ud800", "external_id": "b"}]}',
        {},
    ),
    ("/ingest/reddit", b'{"kind": "t3", "data": {"id": "p", "title": "t", "created_utc": 1e20}}', {}),
    ("/ingest/reddit", b'{"kind": "t3", "data": {"id": "p", "title": "t", "created_utc": Infinity}}', {}),
    ("/ingest/reddit", b'{"kind": "t3", "data": {"id": "p", "title": "t", "created_utc": -1e12}}', {}),
    ("/ingest/manual", b'{"text": NaN}', {}),
    ("/ingest/manual", b'{"text": "x"}', {"Idempotency-Key": "not a key"}),
    ("/ingest/feedback", b'{"source": "x", "title": "t", "created_at": "0001-01-01T00:00:00+05:00"}', {}),
]


@pytest.fixture
def pipeline(settings: Settings, redis: Redis) -> Iterator[Pipeline]:
    with running_pipeline(settings) as running:
        yield running


def event_ids(answer: dict[str, Any]) -> list[str]:
    return [answer["event_id"]] if "event_id" in answer else list(answer.get("event_ids", []))


async def test_every_accepted_event_ends_with_an_outcome_and_hostile_requests_append_nothing(
    pipeline: Pipeline, redis: Redis, keys: Keys
) -> None:
    accepted: list[str] = []
    hostile_answers: list[int] = []
    async with httpx.AsyncClient(base_url=pipeline.api_url) as http:
        for (path, body, headers), hostile in zip(VALID, [*HOSTILE, *[None] * len(VALID)], strict=False):
            response = await http.post(path, json=body, headers=headers)
            assert response.status_code == 202, (path, response.text)
            accepted += event_ids(response.json())
            if hostile is not None:
                refused = await http.post(hostile[0], content=hostile[1], headers=hostile[2])
                hostile_answers.append(refused.status_code)
        pipeline.wait_until_ingested()
        outcomes = [(await http.get(f"/ingest/events/{event_id}")).json() for event_id in accepted]

    assert len(hostile_answers) == len(HOSTILE) and all(400 <= code < 500 for code in hostile_answers)
    assert await redis.xlen(keys.ingest_stream) == len(accepted)
    assert [answer["status"] for answer in outcomes if answer["status"] not in FINAL] == []
    statuses = [answer["status"] for answer in outcomes]
    assert statuses.count(Outcome.DUPLICATE) == 2 and statuses.count(Outcome.UPDATED) == 1
    assert statuses.count(Outcome.IGNORED) == 1
    assert await redis.xlen(keys.ingest_dlq) == 0


async def test_a_poison_entry_published_around_the_api_is_dead_lettered_alone(
    pipeline: Pipeline, redis: Redis, keys: Keys
) -> None:
    """A producer may XADD directly (the streams contract allows it), so the worker cannot rely on
    the API's checks: a lone surrogate in one entry must not take its batch-mates down with it."""

    def entry(payload: str) -> dict[str, str]:
        return {
            IngestField.VERSION: SCHEMA_VERSION,
            IngestField.SOURCE: "manual",
            IngestField.PAYLOAD: payload,
        }

    async with redis.pipeline(transaction=True) as pipe:
        for n in range(30):
            pipe.xadd(keys.ingest_stream, entry(json.dumps({"text": f"valid {n}"})))
        pipe.xadd(keys.ingest_stream, entry('{"text": "\\ud800"}'))
        ids = await pipe.execute()
    pipeline.wait_until_ingested(timeout=30)
    async with httpx.AsyncClient(base_url=pipeline.api_url) as http:
        outcomes = [(await http.get(f"/ingest/events/{entry_id}")).json() for entry_id in ids]
    assert [answer["status"] for answer in outcomes[:30]] == [Outcome.CREATED] * 30
    assert outcomes[30]["status"] == Outcome.DEAD_LETTERED and outcomes[30]["error"]
