"""The operator's side: "sync this repository now", the state routes' validation, and a refused handover."""

from __future__ import annotations

import asyncio

import httpx
from redis.asyncio import Redis

from services.poller.github.sync_process import GitHubSyncProcess
from shared.keys import GITHUB_SYNC_GROUP, Keys
from shared.loop_process import LoopHeartbeat
from shared.settings import Settings
from tests.poller.github.conftest import ADMIN_KEY, NOMER, PROBOT, TINY_RETRY, sync_round
from tests.support.github_server import GitHubServer
from tests.support.pipeline import Pipeline
from tests.support.waiting import eventually

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}


async def test_admin_sync_request_is_served_promptly_by_a_running_sync_process(
    sync_settings: Settings, pipeline: Pipeline, github: GitHubServer, redis: Redis, keys: Keys
) -> None:
    async with httpx.AsyncClient(timeout=30.0) as http:
        # A short interval keeps each long poll short, so the API can shut down soon after the test;
        # NOMER is not configured, so only the request can make the process sync it.
        process = GitHubSyncProcess.from_settings(sync_settings, http, [PROBOT], 2.0, TINY_RETRY)
        running = asyncio.create_task(process.run_forever(LoopHeartbeat()))
        try:
            await eventually(lambda: len(github.listing_requests(str(PROBOT))) >= 3, "first round")
            assert github.listing_requests(str(NOMER)) == []
            async with httpx.AsyncClient(base_url=pipeline.api_url, headers=ADMIN) as api:
                response = await api.post("/admin/github-sync", json={"repo": str(NOMER)})
            assert response.status_code == 202, response.text
            assert response.json()["repo"] == str(NOMER)

            await eventually(lambda: github.listing_requests(str(NOMER)), "the requested repository synced")

            async def acked() -> bool:
                summary = await redis.xpending(keys.github_sync_requests_stream, GITHUB_SYNC_GROUP)
                return bool(summary["pending"] == 0)

            await eventually(acked, "the request acked")
        finally:
            running.cancel()
    await asyncio.to_thread(pipeline.wait_until_ingested)
    assert await redis.exists(keys.feedback_external("github", "293368902"))


async def test_state_does_not_advance_when_the_api_refuses_the_handover(
    sync_settings: Settings, pipeline: Pipeline, github: GitHubServer, redis: Redis, keys: Keys
) -> None:
    refused = sync_settings.model_copy(update={"ingest_api_key": "not-a-producer-key"})

    assert await sync_round(refused, pipeline, PROBOT) == [PROBOT]
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=ADMIN) as api:
        state = (await api.get(f"/config/github/repos/{PROBOT}")).json()
    assert state["last_updated_at"] is None

    assert await sync_round(sync_settings, pipeline, PROBOT) == []
    first_of_second_sync = github.listing_requests(str(PROBOT))[1]
    assert "since=" not in first_of_second_sync.query
    assert await redis.zcard(keys.feedback_source("github")) == 4


async def test_state_routes_need_the_admin_key_and_reject_bad_input_with_reasons(pipeline: Pipeline) -> None:
    async with httpx.AsyncClient(base_url=pipeline.api_url) as api:
        assert (await api.get("/config/github/repos")).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await api.get("/config/github/repos", headers=wrong)).status_code == 403

        bad_name = await api.put("/config/github/repos/bad_owner/x", json={}, headers=ADMIN)
        assert bad_name.status_code == 422
        assert "bad_owner" in bad_name.text
        for body in ({"etag": 5}, {"last_updated_at": "yesterday"}, {"cursor": "x"}, [1]):
            response = await api.put(f"/config/github/repos/{PROBOT}", json=body, headers=ADMIN)
            assert response.status_code == 422, body

        stored = {"last_updated_at": "2016-11-25T03:10:31Z", "etag": 'W/"abc"', "last_synced_at": None}
        assert (
            await api.put(f"/config/github/repos/{PROBOT}", json=stored, headers=ADMIN)
        ).status_code == 200
        listed = (await api.get("/config/github/repos", headers=ADMIN)).json()["repos"]
        assert listed[str(PROBOT)]["etag"] == 'W/"abc"'

        not_a_repo = await api.post("/admin/github-sync", json={"repo": "nope"}, headers=ADMIN)
        assert not_a_repo.status_code == 422
        assert "owner/repo" in not_a_repo.text
        assert (await api.post("/admin/github-sync", json={}, headers=ADMIN)).status_code == 422
        assert (await api.post("/admin/github-sync", json={"repo": str(NOMER)})).status_code == 401
