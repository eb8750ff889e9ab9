"""`GET /clusters` and `GET /clusters/{id}` over the real app, after a real clusterer run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from services.api.app import create_app
from services.clusterer.worker import build_clusterer_consumer
from services.dev.stand_ins.feedback_seed import seed_items, topic_titles
from shared.clusters import ClusterField
from shared.keys import Keys
from shared.settings import Settings
from tests.clusterer.test_clusterer_worker import drained
from tests.support.waiting import run_consumers


@pytest.fixture
async def api(settings: Settings, redis: Redis, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    titles = topic_titles() + [
        f"login page crashes with error 500 after password reset on tablet {n}" for n in range(3)
    ]
    await seed_items(redis, keys, titles)
    await run_consumers([build_clusterer_consumer(settings, redis, keys)], lambda: drained(redis, keys))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


async def test_clusters_largest_first_with_paging(api: httpx.AsyncClient) -> None:
    page = (await api.get("/clusters", params={"order": "largest", "limit": 2})).json()
    assert page["total"] == 3
    assert [c["size"] for c in page["clusters"]] == [8, 5]
    assert page["clusters"][0]["title"].startswith("login page crashes")
    assert "centroid" not in page["clusters"][0]
    rest = (await api.get("/clusters", params={"order": "largest", "limit": 2, "offset": 2})).json()
    assert [c["size"] for c in rest["clusters"]] == [5]


async def test_clusters_newest_first(api: httpx.AsyncClient) -> None:
    clusters = (await api.get("/clusters", params={"order": "newest"})).json()["clusters"]
    created = [c["created_at"] for c in clusters]
    assert created == sorted(created, reverse=True) and len(clusters) == 3


async def test_cluster_with_its_items(api: httpx.AsyncClient) -> None:
    largest = (await api.get("/clusters", params={"order": "largest", "limit": 1})).json()["clusters"][0]
    detail = (await api.get(f"/clusters/{largest['id']}")).json()
    assert detail["size"] == 8 and len(detail["items"]) == 8
    assert {item["cluster_id"] for item in detail["items"]} == {largest["id"]}
    assert detail["summary"].startswith("8 reports (8 manual).")


async def test_bad_requests_get_a_reason(api: httpx.AsyncClient) -> None:
    missing = await api.get("/clusters/not-a-cluster")
    assert missing.status_code == 404 and "not-a-cluster" in missing.text
    assert (await api.get("/clusters", params={"order": "random"})).status_code == 422
    assert (await api.get("/clusters", params={"limit": 0})).status_code == 422


async def test_keywords_are_shown_in_the_list_and_the_detail(
    api: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    largest = (await api.get("/clusters", params={"order": "largest"})).json()["clusters"][0]
    labels = ["login page", "password reset", "error"]
    await redis.hset(keys.cluster(largest["id"]), ClusterField.KEYWORDS, json.dumps(labels))

    listed = (await api.get("/clusters", params={"order": "largest", "limit": 1})).json()["clusters"][0]
    assert listed["keywords"] == labels
    assert (await api.get(f"/clusters/{largest['id']}")).json()["keywords"] == labels


async def test_a_cluster_from_before_keywords_shows_none(
    api: httpx.AsyncClient, redis: Redis, keys: Keys
) -> None:
    clusters = (await api.get("/clusters")).json()["clusters"]
    old = clusters[0]["id"]
    await redis.hdel(keys.cluster(old), ClusterField.KEYWORDS)

    assert (await api.get(f"/clusters/{old}")).json()["keywords"] == []
    assert (
        next(c for c in (await api.get("/clusters")).json()["clusters"] if c["id"] == old)["keywords"] == []
    )
