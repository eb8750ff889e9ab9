"""github-sync against a local GitHub, the real ingest API and the real ingest worker on real Redis."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import httpx
from redis.asyncio import Redis

from services.dev.stand_ins.scripted_http_server import RecordedRequest, Reply
from shared.keys import Keys
from shared.settings import Settings
from tests.poller.github.conftest import (
    ADMIN_KEY,
    NOMER,
    PROBOT,
    nomer_closed,
    probot_issues,
    sync_round,
)
from tests.support.github_server import GitHubServer
from tests.support.pipeline import Pipeline

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
PULL_REQUEST_ID = 190875022
NEWEST_PROBOT_UPDATE = "2016-11-25T03:10:31Z"  # the pull request's: it moves the cursor too


def query(request: RecordedRequest) -> dict[str, str]:
    return {name: values[-1] for name, values in parse_qs(request.query).items()}


async def stored_states(pipeline: Pipeline) -> dict[str, dict[str, str]]:
    async with httpx.AsyncClient(base_url=pipeline.api_url, headers=ADMIN) as api:
        response = await api.get("/config/github/repos")
    assert response.status_code == 200, response.text
    states: dict[str, dict[str, str]] = response.json()["repos"]
    return states


async def item_of(redis: Redis, keys: Keys, issue_id: int) -> dict[str, str]:
    item_id = await redis.get(keys.feedback_external("github", str(issue_id)))
    assert item_id, f"issue {issue_id} not stored"
    item: dict[str, str] = await redis.hgetall(keys.feedback(item_id))
    return item


async def test_first_sync_stores_each_open_issue_once_across_pages_and_skips_the_pull_request(
    sync_settings: Settings, pipeline: Pipeline, github: GitHubServer, redis: Redis, keys: Keys
) -> None:
    assert await sync_round(sync_settings, pipeline, PROBOT, NOMER) == []

    listing = github.listing_requests(str(PROBOT))
    assert [query(r).get("page") for r in listing] == [None, "2", "3"]
    first = query(listing[0])
    assert first == {"per_page": "100", "sort": "updated", "direction": "asc", "state": "open"}
    assert listing[0].headers["authorization"] == "Bearer ghp_test_token"
    assert listing[0].headers["accept"] == "application/vnd.github+json"
    assert listing[0].headers["x-github-api-version"] == "2022-11-28"
    assert "soulcaster" in listing[0].headers["user-agent"]

    issue_ids = [issue["id"] for issue in probot_issues() if "pull_request" not in issue]
    for issue_id in [*issue_ids, nomer_closed()["id"]]:
        assert (await item_of(redis, keys, issue_id))["status"] == "open"
    assert not await redis.exists(keys.feedback_external("github", str(PULL_REQUEST_ID)))
    assert await redis.zcard(keys.feedback_source("github")) == 5
    assert await redis.xlen(keys.new_item_stream) == 5
    assert await redis.scard(keys.unclustered) == 5


async def test_resync_after_restart_asks_only_for_changes_and_announces_nothing(
    sync_settings: Settings, pipeline: Pipeline, github: GitHubServer, redis: Redis, keys: Keys
) -> None:
    await sync_round(sync_settings, pipeline, PROBOT)
    state = (await stored_states(pipeline))[str(PROBOT)]
    assert state["last_updated_at"].startswith("2016-11-25T03:10:31")
    assert state["etag"]

    assert await sync_round(sync_settings, pipeline, PROBOT) == []
    second = github.listing_requests(str(PROBOT))[3]
    assert query(second) == {
        "per_page": "100",
        "sort": "updated",
        "direction": "asc",
        "state": "all",
        "since": NEWEST_PROBOT_UPDATE,
    }
    assert second.headers["if-none-match"] == state["etag"]

    assert await sync_round(sync_settings, pipeline, PROBOT) == []
    third = github.listing_requests(str(PROBOT))[4]
    assert third.headers["if-none-match"]
    assert github.replies[-1].status == 304
    assert await redis.xlen(keys.new_item_stream) == 4
    assert await redis.zcard(keys.feedback_source("github")) == 4


async def test_issue_closed_later_is_archived_without_a_new_announcement(
    sync_settings: Settings, pipeline: Pipeline, github: GitHubServer, redis: Redis, keys: Keys
) -> None:
    await sync_round(sync_settings, pipeline, NOMER)
    closed = nomer_closed()
    github.put_issue(str(NOMER), closed)

    assert await sync_round(sync_settings, pipeline, NOMER) == []

    assert query(github.listing_requests(str(NOMER))[-1])["state"] == "all"
    item = await item_of(redis, keys, closed["id"])
    assert item["status"] == "closed"
    assert not await redis.sismember(keys.unclustered, item["id"])
    assert await redis.xlen(keys.new_item_stream) == 1


async def test_secondary_rate_limit_is_retried_after_the_time_github_asks(
    sync_settings: Settings, pipeline: Pipeline, github: GitHubServer
) -> None:
    github.fail_next(
        Reply(
            403,
            {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
            headers={"Retry-After": "1"},
        )
    )

    assert await sync_round(sync_settings, pipeline, NOMER) == []

    refused, retried = github.listing_requests(str(NOMER))[:2]
    assert retried.received_at - refused.received_at >= 1.0
    assert query(retried) == query(refused)


async def test_primary_rate_limit_spent_holds_requests_until_its_reset(
    sync_settings: Settings, pipeline: Pipeline, github: GitHubServer
) -> None:
    reset = int(time.time()) + 2
    github.rate_limit_remaining, github.rate_limit_reset = 1, reset

    assert await sync_round(sync_settings, pipeline, PROBOT) == []

    exhausted, after_reset = github.replies[:2]
    assert exhausted.sent_at < reset <= after_reset.sent_at


async def test_repository_that_keeps_failing_is_skipped_and_the_others_go_on(
    sync_settings: Settings, pipeline: Pipeline, github: GitHubServer, redis: Redis, keys: Keys
) -> None:
    github.broken.add(str(NOMER))

    assert await sync_round(sync_settings, pipeline, NOMER, PROBOT) == [NOMER]

    assert len(github.listing_requests(str(NOMER))) == 3  # every attempt of the retry policy
    assert await redis.zcard(keys.feedback_source("github")) == 4
    assert list(await stored_states(pipeline)) == [str(PROBOT)]
