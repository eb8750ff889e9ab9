"""Hostile input at the API on a real Redis: each is a 4xx with a reason and nothing is appended, and
an item already stored with hostile metadata is still served."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from shared.clusters import ClusterField
from shared.keys import Keys
from shared.models import UNREADABLE_METADATA, FeedbackItem


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def reasons(response: httpx.Response) -> str:
    return json.dumps(response.json()["detail"])


async def nothing_appended(redis: Redis, keys: Keys) -> bool:
    return await redis.xlen(keys.ingest_stream) == 0


@pytest.mark.parametrize("depth", [40, 300])
async def test_deep_metadata_is_refused_naming_the_limit(
    api: httpx.AsyncClient, redis: Redis, keys: Keys, depth: int
) -> None:
    response = await api.post("/ingest/manual", json={"text": "x", "metadata": {"a": nested(depth)}})
    assert response.status_code == 422
    assert "deeper than 32 levels (MAX_JSON_DEPTH)" in reasons(response)
    assert await nothing_appended(redis, keys)


async def test_metadata_within_the_limit_is_accepted(api: httpx.AsyncClient) -> None:
    response = await api.post("/ingest/manual", json={"text": "x", "metadata": {"a": nested(28)}})
    assert response.status_code == 202


async def test_an_item_already_stored_with_deep_metadata_is_served_on_every_read(
    api: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    deep = json.dumps({"a": nested(300)})
    item = FeedbackItem(id="deep-1", source="manual", title="t", created_at="2026-01-01T00:00:00Z")
    fields = {**item.to_hash(), "metadata": deep, "cluster_id": "c-1", "clustered": "true"}
    await redis.hset(keys.feedback(item.id), mapping=fields)
    await redis.zadd(keys.feedback_created, {item.id: 1})
    await redis.zadd(keys.feedback_source("manual"), {item.id: 1})
    await redis.hset(
        keys.cluster("c-1"),
        mapping={
            ClusterField.ID: "c-1",
            ClusterField.TITLE: "t",
            ClusterField.CREATED_AT: "2026-01-01T00:00:00+00:00",
            ClusterField.UPDATED_AT: "2026-01-01T00:00:00+00:00",
            ClusterField.SIZE: "1",
        },
    )
    await redis.sadd(keys.cluster_items("c-1"), item.id)

    pages = [await api.get(path) for path in ("/feedback", "/feedback?source=manual")]
    one = await api.get("/feedback/deep-1")
    cluster = await api.get("/clusters/c-1")

    assert [page.status_code for page in pages] == [200, 200]
    assert [page.json()["items"][0]["metadata"] for page in pages] == [{UNREADABLE_METADATA: deep}] * 2
    assert one.status_code == 200 and one.json()["metadata"] == {UNREADABLE_METADATA: deep}
    assert cluster.status_code == 200 and cluster.json()["items"][0]["metadata"] == {
        UNREADABLE_METADATA: deep
    }


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        ("/ingest/manual", b'{"text": "\\ud800"}', '["body", "text"]'),
        ("/ingest/manual", b'{"text": "upper \\uDBFF case"}', '["body", "text"]'),
        ("/ingest/manual", b'{"text": "ok", "metadata": {"\\udfff": 1}}', r'["body", "metadata", "\\udfff"]'),
        (
            "/ingest/feedback",
            b'{"items": [{"source": "x", "title": "ok", "external_id": "a"},'
            b' {"source": "x", "title": "\\ud800", "external_id": "b"}]}',
            '["body", "items", 1, "title"]',
        ),
        ("/ingest/reddit", b'[{"external_id": "a", "title": "x\\ud83dy"}]', '["body", 0, "title"]'),
    ],
)
async def test_a_lone_surrogate_anywhere_is_refused_with_where_it_is(
    api: httpx.AsyncClient, redis: Redis, keys: Keys, path: str, body: bytes, where: str
) -> None:
    response = await api.post(path, content=body)
    assert response.status_code == 422
    assert "lone UTF-16 surrogate" in reasons(response)
    assert where in json.dumps([problem["loc"] for problem in response.json()["detail"]])
    assert await nothing_appended(redis, keys)


async def test_a_surrogate_pair_is_ordinary_text(api: httpx.AsyncClient) -> None:
    response = await api.post("/ingest/manual", content=b'{"text": "ok \\ud83d\\ude00"}')
    assert response.status_code == 202


def reddit_listing(created_utc: str) -> bytes:
    return b'{"kind": "t3", "data": {"id": "p1", "title": "t", "created_utc": ' + created_utc.encode() + b"}}"


def github_delivery(created_at: str) -> dict[str, Any]:
    issue = {"id": 1, "number": 1, "state": "open", "html_url": "https://github.com/o/r/issues/1"}
    return {"action": "opened", "issue": {**issue, "created_at": created_at}}


OUT_OF_RANGE = "within the years 1 to 9999"


@pytest.mark.parametrize(
    ("path", "body", "status", "reason"),
    [
        ("/ingest/reddit", reddit_listing("1e20"), 422, OUT_OF_RANGE),
        ("/ingest/reddit", reddit_listing("-1e12"), 422, OUT_OF_RANGE),
        ("/ingest/reddit", reddit_listing("1e400"), 422, "too large to represent"),
        ("/ingest/reddit", reddit_listing("Infinity"), 400, "Infinity is not a JSON value"),
        ("/ingest/reddit", reddit_listing("NaN"), 400, "NaN is not a JSON value"),
        (
            "/ingest/reddit",
            json.dumps(
                {"external_id": "a", "title": "t", "created_at": "9999-12-31T23:59:59-23:59"}
            ).encode(),
            422,
            OUT_OF_RANGE,
        ),
        (
            "/ingest/feedback",
            json.dumps({"source": "x", "title": "t", "created_at": "0001-01-01T00:00:00+01:00"}).encode(),
            422,
            OUT_OF_RANGE,
        ),
        (
            "/ingest/github",
            json.dumps(github_delivery("9999-12-31T23:00:00-05:00")).encode(),
            422,
            OUT_OF_RANGE,
        ),
        (
            "/ingest/sentry",
            json.dumps({"data": {"issue": {"id": "1", "firstSeen": "0001-01-01T00:30:00+01:00"}}}).encode(),
            422,
            OUT_OF_RANGE,
        ),
    ],
)
async def test_a_time_the_normalizer_cannot_convert_is_refused_at_the_api(
    api: httpx.AsyncClient, redis: Redis, keys: Keys, path: str, body: bytes, status: int, reason: str
) -> None:
    headers = {"X-GitHub-Event": "issues"} if path.endswith("github") else {}
    response = await api.post(path, content=body, headers=headers)
    assert response.status_code == status, response.text
    assert reason in response.text
    assert await nothing_appended(redis, keys)


async def test_a_reasonable_reddit_time_is_still_accepted(api: httpx.AsyncClient) -> None:
    assert (await api.post("/ingest/reddit", content=reddit_listing("1767312000.5"))).status_code == 202


@pytest.mark.parametrize(
    "path",
    [
        "/feedback?offset=9223372036854775807",
        "/clusters?offset=9223372036854775808",
        "/feedback?cursor=nan:x",
        "/feedback?cursor=inf:x",
        "/feedback?cursor=",
        "/ingest/events/1-99999999999999999999",
        "/ingest/events/18446744073709551616-0",
        "/ingest/events/1-0%0a",
    ],
)
async def test_client_errors_are_422_not_503(api: httpx.AsyncClient, path: str) -> None:
    response = await api.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"]


async def test_the_largest_entry_id_is_a_valid_lookup(api: httpx.AsyncClient) -> None:
    largest = f"{2**64 - 1}-{2**64 - 1}"
    assert (await api.get(f"/ingest/events/{largest}")).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", "/config/reddit/subreddits", {"subreddits": []}, 422),
        ("POST", "/admin/trigger-poll", {"subreddits": []}, 422),
        ("POST", "/admin/github-sync", {"repo": ""}, 422),
        ("PUT", "/config/github/repos/bad_owner/x", {}, 422),
    ],
)
async def test_configuration_refusals_are_422(
    api: httpx.AsyncClient, method: str, path: str, body: dict[str, Any], status: int
) -> None:
    response = await api.request(method, path, json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/ingest/manual", b'{"text": NaN}'),
        ("PUT", "/config/reddit/subreddits", b'{"subreddits": ["gaming"], "x": -Infinity}'),
        ("PUT", "/config/github/repos/octo/repo", b'{"etag": NaN}'),
        ("POST", "/producer-requests/poller/ack", b'{"ids": [], "n": Infinity}'),
    ],
)
async def test_nan_and_infinity_literals_are_not_json(
    api: httpx.AsyncClient, redis: Redis, keys: Keys, method: str, path: str, body: bytes
) -> None:
    response = await api.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert "is not a JSON value" in response.text
    assert await redis.get(keys.reddit_subreddits) is None
    assert await redis.hlen(keys.github_sync_state) == 0


async def test_configuration_bodies_obey_the_same_depth_and_surrogate_rules(api: httpx.AsyncClient) -> None:
    deep = await api.put("/config/reddit/subreddits", json={"subreddits": ["gaming"], "x": nested(40)})
    surrogate = await api.put(
        "/config/github/repos/octo/repo",
        content=b'{"etag": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert deep.status_code == 422 and "MAX_JSON_DEPTH" in deep.text
    assert surrogate.status_code == 422 and "lone UTF-16 surrogate" in surrogate.text


def test_reading_a_hash_with_absurdly_deep_metadata_does_not_recurse() -> None:
    raw = "[" * 100_000 + "]" * 100_000
    fields = {
        "id": "i",
        "source": "manual",
        "title": "t",
        "created_at": "2026-01-01T00:00:00+00:00",
        "metadata": raw,
    }
    assert FeedbackItem.from_hash(fields).metadata == {UNREADABLE_METADATA: raw}
