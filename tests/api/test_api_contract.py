"""What a client can rely on beyond single requests: the OpenAPI document describes each producer body
and every error answer, a 405 names every allowed method, admin triggers are built alike, and a
client that hangs up mid-body is a 499, never a server error."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.api.app import create_app
from shared.keys import GitHubSyncRequestField, Keys, PollRequestField
from shared.settings import Settings
from tests.support.paths import FIXTURES

PRODUCER_BODIES = {
    "/ingest/manual": {"text": "Export hangs"},
    "/ingest/feedback": {"items": [{"source": "billing", "title": "Refund failed"}]},
    "/ingest/reddit": json.loads((FIXTURES / "reddit" / "listing_new.json").read_text())["data"]["children"],
    "/ingest/sentry": json.loads((FIXTURES / "sentry" / "issue_created.json").read_text()),
    "/ingest/github": json.loads((FIXTURES / "github" / "issues_opened.json").read_text()),
}


@pytest.fixture
async def document(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def body_validator(document: dict[str, Any], path: str) -> Draft202012Validator:
    schema = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return Draft202012Validator({**schema, "components": document["components"]})


@pytest.mark.parametrize("path", sorted(PRODUCER_BODIES))
async def test_each_producer_endpoint_declares_a_body_that_describes_what_it_accepts(
    api: httpx.AsyncClient, document: dict[str, Any], path: str
) -> None:
    validator = body_validator(document, path)
    headers = {"X-GitHub-Event": "issues"} if path.endswith("github") else {}
    assert list(validator.iter_errors(PRODUCER_BODIES[path])) == []
    assert (await api.post(path, json=PRODUCER_BODIES[path], headers=headers)).status_code == 202
    assert list(validator.iter_errors("not an event")) != []
    assert (
        list(validator.iter_errors([{"title": 5}] if path.endswith(("reddit", "github")) else {"title": 5}))
        != []
    )


@pytest.mark.parametrize("path", sorted(PRODUCER_BODIES))
async def test_each_producer_endpoint_declares_its_error_answers(document: dict[str, Any], path: str) -> None:
    responses = document["paths"][path]["post"]["responses"]
    for code in ("400", "401", "413", "422", "503"):
        schema = responses[code]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, code
    assert "Idempotency-Key" in responses["503"]["description"]


async def test_read_endpoints_declare_their_error_answers(document: dict[str, Any]) -> None:
    declared = {
        path: set(document["paths"][path]["get"]["responses"])
        for path in (
            "/feedback",
            "/feedback/{item_id}",
            "/clusters",
            "/clusters/{cluster_id}",
            "/ingest/events/{event_id}",
        )
    }
    assert all({"401", "422", "503"} <= codes for codes in declared.values()), declared
    assert all("404" in declared[path] for path in ("/feedback/{item_id}", "/clusters/{cluster_id}"))


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/config/reddit/subreddits", {"GET", "PUT"}),
        ("PATCH", "/config/github/repos/octo/repo", {"GET", "PUT"}),
        ("GET", "/ingest/manual", {"POST"}),
    ],
)
async def test_a_405_lists_every_method_the_path_allows(
    api: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    response = await api.request(method, path)
    assert response.status_code == 405
    assert {name.strip() for name in response.headers["Allow"].split(",")} == allowed


async def test_both_admin_triggers_carry_the_request_id(
    api: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    poll = await api.post("/admin/trigger-poll", headers={"X-Request-ID": "op-poll"})
    sync = await api.post(
        "/admin/github-sync", json={"repo": "octo/repo"}, headers={"X-Request-ID": "op-sync"}
    )
    assert (poll.status_code, sync.status_code) == (202, 202)
    [(poll_id, poll_fields)] = await redis.xrange(keys.poll_requests_stream)
    [(sync_id, sync_fields)] = await redis.xrange(keys.github_sync_requests_stream)
    assert (poll.json()["request_id"], poll_fields[PollRequestField.REQUEST_ID]) == (poll_id, "op-poll")
    assert (sync.json()["request_id"], sync_fields[GitHubSyncRequestField.REQUEST_ID]) == (sync_id, "op-sync")


def asgi_scope(method: str, path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        "client": ("127.0.0.1", 50000),
        "server": ("api", 80),
    }


async def hang_up_mid_body(settings: Settings, method: str, path: str) -> list[dict[str, Any]]:
    """Drives the app as a server does when the client closes its socket after part of the body."""
    app = create_app(settings)
    arriving = [{"type": "http.request", "body": b'{"text": "half a bo', "more_body": True}]
    answer: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return arriving.pop(0) if arriving else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        answer.append(message)

    async with app.router.lifespan_context(app):
        await app(asgi_scope(method, path), receive, send)  # type: ignore[arg-type]
    return answer


def answered(source: str, status: str) -> float:
    sample = REGISTRY.get_sample_value(
        "soulcaster_api_ingest_requests_total", {"source": source, "status": status}
    )
    return sample or 0.0


async def test_a_client_that_hangs_up_mid_body_is_a_client_closed_request(
    settings: Settings, redis: Redis, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    closed_before, failed_before = answered("manual", "499"), answered("manual", "500")
    with caplog.at_level(logging.INFO):
        producer = await hang_up_mid_body(settings, "POST", "/ingest/manual")
        operator = await hang_up_mid_body(settings, "PUT", "/config/reddit/subreddits")
    assert [producer[0]["status"], operator[0]["status"]] == [499, 499]
    assert (answered("manual", "499"), answered("manual", "500")) == (closed_before + 1, failed_before)
    closed = [record for record in caplog.records if record.getMessage() == "client closed the request"]
    assert [record.levelno for record in closed] == [logging.INFO, logging.INFO]
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert await redis.xlen(keys.ingest_stream) == 0
