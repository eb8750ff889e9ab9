"""The ingest API on a real Redis: what reaches `stream:ingest`, and each rejection's status and reason."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.ingest.outcomes import Outcome, OutcomeField
from services.ingest.source_index import backfill_sources
from shared.keys import INGEST_GROUP, IngestField, Keys
from shared.models import FeedbackItem
from shared.settings import Settings
from tests.api.conftest import client_for
from tests.support.paths import FIXTURES


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@pytest.fixture
async def secured(settings: Settings, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    locked = settings.model_copy(
        update={
            "ingest_api_keys": ["key-one", "key-two"],
            "sentry_client_secret": "sentry-secret",
            "github_webhook_secret": "github-secret",
            "max_body_bytes": 20_000,
            "max_batch_items": 3,
        }
    )
    async for client in client_for(locked):
        yield client


async def entries(redis: Redis, keys: Keys) -> list[tuple[str, dict[str, str]]]:
    return await redis.xrange(keys.ingest_stream)


async def test_manual_event_is_appended_verbatim_with_request_id(
    api: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    body = b'{"text": "Export hangs",  "title": "Export"}'
    response = await api.post("/ingest/manual", content=body, headers={"X-Request-ID": "req-42"})
    assert response.status_code == 202
    assert response.headers["X-Request-ID"] == "req-42"
    [(entry_id, fields)] = await entries(redis, keys)
    assert response.json() == {"event_id": entry_id}
    assert fields[IngestField.SOURCE] == "manual"
    assert fields[IngestField.PAYLOAD] == body.decode()
    assert fields[IngestField.REQUEST_ID] == "req-42"
    assert fields[IngestField.PRODUCER] == "api"
    assert fields[IngestField.VERSION] == "1"


async def test_request_id_is_generated_when_absent_or_unsafe(
    api: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    response = await api.post("/ingest/manual", json={"text": "x"}, headers={"X-Request-ID": "bad id\n"})
    generated = response.headers["X-Request-ID"]
    assert len(generated) == 32
    [(_, fields)] = await entries(redis, keys)
    assert fields[IngestField.REQUEST_ID] == generated


@pytest.mark.parametrize(
    ("path", "body", "status", "reason"),
    [
        ("/ingest/manual", b"{not json", 400, "not valid JSON"),
        ("/ingest/manual", b"", 400, "not valid JSON"),
        ("/ingest/manual", b"\xff\xfe", 400, "not UTF-8"),
        ("/ingest/manual", b"[" * 100_000 + b"]" * 100_000, 422, "MAX_JSON_DEPTH"),
        ("/ingest/manual", b'{"text": "' + b"x" * 1_100_000 + b'"}', 413, "MAX_BODY_BYTES"),
        ("/ingest/manual", b'{"text": 5}', 422, "text"),
        ("/ingest/manual", b'{"text": "  "}', 422, "text must not be empty"),
        ("/ingest/reddit", b'{"kind": "t1", "data": {}}', 422, "kind"),
        ("/ingest/reddit", b'"a string"', 422, "expected a JSON object"),
        ("/ingest/feedback", b'{"source": "Not Valid", "title": "t"}', 422, "source"),
        ("/ingest/sentry", b'{"message": "no ids"}', 422, "no issue short id"),
        ("/ingest/github", b'{"id": 1}', 400, "JSON array of REST issue objects"),
    ],
)
async def test_bad_input_is_a_clear_4xx_and_nothing_is_published(
    api: httpx.AsyncClient, redis: Redis, keys: Keys, path: str, body: bytes, status: int, reason: str
) -> None:
    response = await api.post(path, content=body)
    assert response.status_code == status, response.text
    assert reason in response.text
    assert await entries(redis, keys) == []


async def test_validation_errors_carry_pydantic_locations(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/ingest/feedback", json={"items": [{"source": "x", "title": "ok"}, {"title": 1}]}
    )
    assert response.status_code == 422
    locations = {tuple(problem["loc"]) for problem in response.json()["detail"]}
    assert ("body", "items", 1, "source") in locations
    assert ("body", "items", 1, "title") in locations


async def test_body_size_is_checked_on_bytes_read_not_only_content_length(
    secured: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    async def chunked() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"}'

    response = await secured.post(
        "/ingest/manual", content=chunked(), headers={"Authorization": "Bearer key-one"}
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert await entries(redis, keys) == []


async def test_reddit_single_raw_child_and_poller_batch(
    api: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    listing = json.loads(fixture_bytes("reddit/listing_hot.json"))
    children = listing["data"]["children"]
    single = await api.post("/ingest/reddit", json=children[0])
    assert single.status_code == 202
    poller_post = {"source": "reddit", "external_id": "abc", "title": "t", "body": "b", "metadata": {}}
    batch = await api.post("/ingest/reddit", json=[children[1], poller_post])
    assert batch.status_code == 202
    event_ids = batch.json()["event_ids"]
    stored = await entries(redis, keys)
    assert [entry_id for entry_id, _ in stored] == [single.json()["event_id"], *event_ids]
    assert json.loads(stored[1][1][IngestField.PAYLOAD]) == children[1]
    assert json.loads(stored[2][1][IngestField.PAYLOAD]) == poller_post


async def test_feedback_single_and_batch(api: httpx.AsyncClient, redis: Redis, keys: Keys) -> None:
    item = {"source": "posthog", "title": "Crash", "external_id": "e1"}
    assert (await api.post("/ingest/feedback", json=item)).status_code == 202
    batch = await api.post("/ingest/feedback", json={"items": [item, {**item, "external_id": "e2"}]})
    assert batch.status_code == 202
    assert len(batch.json()["event_ids"]) == 2
    assert [f[IngestField.SOURCE] for _, f in await entries(redis, keys)] == ["feedback"] * 3


async def test_batches_larger_than_max_batch_items_are_413(
    secured: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    items = [{"source": "x", "title": str(n)} for n in range(4)]
    response = await secured.post(
        "/ingest/feedback", json={"items": items}, headers={"Authorization": "Bearer key-two"}
    )
    assert response.status_code == 413
    assert "MAX_BATCH_ITEMS" in response.text
    assert await entries(redis, keys) == []


async def test_api_keys_are_required_when_configured(
    secured: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic key-one"}):
        response = await secured.post("/ingest/manual", json={"text": "x"}, headers=headers)
        assert response.status_code == 401
        assert "API key" in response.json()["detail"]
    assert (await secured.get("/feedback")).status_code == 401
    ok = await secured.post("/ingest/manual", json={"text": "x"}, headers={"Authorization": "Bearer key-two"})
    assert ok.status_code == 202
    assert len(await entries(redis, keys)) == 1
    assert (await secured.get("/healthz")).status_code == 200


def signed(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def test_sentry_signature_checked_over_the_raw_body(
    secured: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    body = fixture_bytes("sentry/event_alert.json")
    missing = await secured.post("/ingest/sentry", content=body)
    assert (missing.status_code, missing.json()["detail"]) == (401, "missing Sentry-Hook-Signature header")
    wrong = await secured.post(
        "/ingest/sentry", content=body, headers={"Sentry-Hook-Signature": signed("other", body)}
    )
    assert (wrong.status_code, wrong.json()["detail"]) == (401, "invalid Sentry-Hook-Signature signature")
    reformatted = json.dumps(json.loads(body)).encode()
    assert (
        await secured.post(
            "/ingest/sentry",
            content=reformatted,
            headers={"Sentry-Hook-Signature": signed("sentry-secret", body)},
        )
    ).status_code == 401
    assert await entries(redis, keys) == []
    good = await secured.post(
        "/ingest/sentry",
        content=body,
        headers={
            "Sentry-Hook-Signature": signed("sentry-secret", body),
            "Sentry-Hook-Resource": "event_alert",
        },
    )
    assert good.status_code == 202
    [(_, fields)] = await entries(redis, keys)
    assert fields[IngestField.PAYLOAD] == body.decode()


async def test_sentry_other_resources_are_acknowledged_not_published(
    api: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    response = await api.post(
        "/ingest/sentry",
        json={"action": "created", "data": {}},
        headers={"Sentry-Hook-Resource": "installation"},
    )
    assert response.status_code == 202
    assert "installation" in response.json()["ignored"]
    for name in ("issue_created", "error_created", "legacy_webhook"):
        assert (
            await api.post("/ingest/sentry", content=fixture_bytes(f"sentry/{name}.json"))
        ).status_code == 202
    assert len(await entries(redis, keys)) == 3


async def test_github_webhook_events(secured: httpx.AsyncClient, redis: Redis, keys: Keys) -> None:
    def headers(event: str, body: bytes, secret: str = "github-secret") -> dict[str, str]:
        return {"X-GitHub-Event": event, "X-Hub-Signature-256": f"sha256={signed(secret, body)}"}

    ping = fixture_bytes("github/ping.json")
    answered = await secured.post("/ingest/github", content=ping, headers=headers("ping", ping))
    assert answered.status_code == 200
    assert answered.json() == {"zen": json.loads(ping)["zen"], "hook_id": json.loads(ping)["hook_id"]}
    push = await secured.post("/ingest/github", content=b"{}", headers=headers("push", b"{}"))
    assert (push.status_code, push.json()) == (202, {"ignored": "github event 'push' is not ingested"})
    opened = fixture_bytes("github/issues_opened.json")
    forged = await secured.post("/ingest/github", content=opened, headers=headers("issues", opened, "nope"))
    assert forged.status_code == 401
    assert await entries(redis, keys) == []
    for name in ("opened", "edited", "closed", "reopened"):
        body = fixture_bytes(f"github/issues_{name}.json")
        assert (
            await secured.post("/ingest/github", content=body, headers=headers("issues", body))
        ).status_code == 202
    stored = await entries(redis, keys)
    assert [json.loads(f[IngestField.PAYLOAD])["action"] for _, f in stored] == [
        "opened",
        "edited",
        "closed",
        "reopened",
    ]
    bad = json.dumps({"action": "opened", "issue": {"id": 1}}).encode()
    invalid = await secured.post("/ingest/github", content=bad, headers=headers("issues", bad))
    assert invalid.status_code == 422


async def test_github_rest_issue_array_skips_pull_requests(
    api: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    issues = json.loads(fixture_bytes("github/rest_issues_page1.json"))
    response = await api.post("/ingest/github", json=issues)
    assert response.status_code == 202
    assert response.json()["skipped_pull_requests"] == 1
    assert len(response.json()["event_ids"]) == 4
    numbers = [json.loads(f[IngestField.PAYLOAD])["number"] for _, f in await entries(redis, keys)]
    assert numbers == [63, 61, 57, 53]


async def test_event_status_pending_then_recorded_outcomes(
    api: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    event_id = (await api.post("/ingest/manual", json={"text": "x"})).json()["event_id"]
    pending = await api.get(f"/ingest/events/{event_id}")
    assert pending.json() == {"event_id": event_id, "status": "pending"}
    created = {OutcomeField.STATUS: Outcome.CREATED, OutcomeField.FEEDBACK_ID: "f-1"}
    await redis.hset(keys.event_outcomes(event_id), event_id, json.dumps(created))
    assert (await api.get(f"/ingest/events/{event_id}")).json() == {
        "event_id": event_id,
        "status": "created",
        "feedback_id": "f-1",
    }
    dead_lettered = {
        OutcomeField.STATUS: Outcome.DEAD_LETTERED,
        OutcomeField.ERROR: "bad",
        OutcomeField.DEAD_LETTER_ID: "9-9",
    }
    await redis.hset(keys.event_outcomes("1-1"), "1-1", json.dumps(dead_lettered))
    dead = (await api.get("/ingest/events/1-1")).json()
    assert (dead["status"], dead["error"], dead["dead_letter_id"]) == ("dead_lettered", "bad", "9-9")
    assert (await api.get("/ingest/events/2-2")).status_code == 404
    assert (await api.get("/ingest/events/not-an-id")).status_code == 422


async def store(redis: Redis, keys: Keys, item: FeedbackItem) -> None:
    score = item.created_at.timestamp()
    await redis.hset(keys.feedback(item.id), mapping=item.to_hash())
    await redis.zadd(keys.feedback_created, {item.id: score})
    await redis.zadd(keys.feedback_source(item.source), {item.id: score})


def sample(n: int, source: str = "manual", when: int | None = None) -> FeedbackItem:
    return FeedbackItem(
        id=f"id-{n:02d}", source=source, title=f"t{n}", created_at=f"2026-01-01T00:00:{when or n:02d}Z"
    )


async def test_feedback_pages_newest_first_with_stable_cursor(
    api: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    for n in range(1, 8):
        await store(redis, keys, sample(n, when=5 if n in (4, 5, 6) else n))  # three share a score
    seen: list[str] = []
    totals: list[int] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/feedback", params=params)).json()
        totals.append(page["total"])
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        if len(seen) == 2:
            await store(redis, keys, sample(9, when=59))  # a newer item must not shift later pages
    assert seen == ["id-07", "id-06", "id-05", "id-04", "id-03", "id-02", "id-01"]
    assert totals == [7, 8, 8, 8]
    offset_page = (await api.get("/feedback", params={"limit": 3, "offset": 1})).json()
    assert [item["id"] for item in offset_page["items"]] == ["id-07", "id-06", "id-05"]
    assert (await api.get("/feedback", params={"cursor": "x", "offset": 1})).status_code == 400
    assert (await api.get("/feedback", params={"cursor": "nonsense"})).status_code == 422


async def test_feedback_by_source_and_by_id(api: httpx.AsyncClient, redis: Redis, keys: Keys) -> None:
    await store(redis, keys, sample(1, "reddit"))
    await store(redis, keys, sample(2, "github"))
    await redis.zadd(keys.feedback_created, {"gone": 99})
    page = (await api.get("/feedback", params={"source": "reddit"})).json()
    assert [item["id"] for item in page["items"]] == ["id-01"]
    everything = (await api.get("/feedback")).json()
    assert [item["id"] for item in everything["items"]] == ["id-02", "id-01"], "a missing hash is skipped"
    one = await api.get("/feedback/id-02")
    assert FeedbackItem.model_validate(one.json()) == sample(2, "github")
    assert (await api.get("/feedback/nope")).status_code == 404
    assert (await api.get("/feedback", params={"source": "Bad!"})).status_code == 422


async def test_stats_counts_sources_and_streams(api: httpx.AsyncClient, redis: Redis, keys: Keys) -> None:
    await store(redis, keys, sample(1, "reddit"))
    await store(redis, keys, sample(2, "posthog-eu"))
    await redis.sadd(keys.unclustered, "id-01")
    await api.post("/ingest/manual", json={"text": "a"})
    await api.post("/ingest/manual", json={"text": "b"})
    await redis.xgroup_create(keys.ingest_stream, INGEST_GROUP, "0")
    await redis.xreadgroup(INGEST_GROUP, "c1", {keys.ingest_stream: ">"}, count=1)
    await redis.xadd(keys.dead_letter_stream(keys.ingest_stream), {"x": "1"})
    await redis.sadd(keys.clusters_all, "c-1", "c-2")
    legacy = (await api.get("/stats")).json()["feedback"]["by_source"]
    assert "posthog-eu" not in legacy, "/stats reads the sources set; items stored without it need a backfill"
    await backfill_sources(redis, keys)
    stats = (await api.get("/stats")).json()
    assert stats["clusters"] == {"total": 2}
    feedback = stats["feedback"]
    assert (feedback["total"], feedback["unclustered"]) == (2, 1)
    assert feedback["by_source"]["reddit"] == 1
    assert feedback["by_source"]["posthog-eu"] == 1
    assert feedback["by_source"]["sentry"] == 0
    ingest, new_items = stats["streams"]
    assert (ingest["length"], ingest["dead_letter_length"]) == (2, 1)
    [group] = ingest["groups"]
    assert (group["name"], group["pending"], group["lag"], group["consumers"]) == (INGEST_GROUP, 1, 1, 1)
    assert group["oldest_pending_id"] is not None
    assert (new_items["length"], new_items["groups"]) == (0, [])


async def test_probes_and_metrics(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    assert (await api.get("/readyz")).status_code == 200
    await api.post("/ingest/manual", content=b"{")
    metrics = (await api.get("/metrics")).text
    assert 'soulcaster_api_ingest_requests_total{source="manual",status="400"}' in metrics


async def test_redis_down_is_503_and_not_ready(settings: Settings) -> None:
    from services.dev.local_redis import free_port

    unreachable = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    async for client in client_for(unreachable):
        response = await client.post("/ingest/manual", json={"text": "x"})
        assert response.status_code == 503
        assert response.json()["detail"] == "storage unavailable, retry later"
        assert "request_id" in response.json()
        assert (await client.get("/readyz")).status_code == 503
