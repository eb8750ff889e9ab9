"""Subreddit config and poll requests through the real API: validation, keys, precedence, the trigger path."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

import httpx
import pytest
from redis.asyncio import Redis

from services.dev.local_redis import free_port
from services.poller.producer.ingest_client import IngestApiClient
from services.poller.producer.producer_loop import serve_requests
from services.poller.producer.requests_client import ProducerRequests
from services.poller.reddit.targets import resolve_targets
from shared.keys import Keys
from shared.loop_process import LoopHeartbeat
from shared.settings import Settings
from shared.subreddit_names import InvalidSubreddits, normalize_subreddits
from tests.poller.reddit.conftest import (
    ADMIN_KEY,
    PRODUCER_KEY,
    REAL_SUBREDDITS,
    TINY_RETRY,
    drained,
    fast_poller,
)
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.reddit_server import RedditServer
from tests.support.waiting import eventually

ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
PRODUCER = {"Authorization": f"Bearer {PRODUCER_KEY}"}


def test_names_are_trimmed_lowercased_and_deduplicated_in_order() -> None:
    assert normalize_subreddits([" Python", "r/rust", "python", "", "/r/Ask_Reddit "]) == [
        "python",
        "rust",
        "ask_reddit",
    ]


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        (["ab"], "3 to 21 characters"),
        (["a" * 22], "3 to 21 characters"),
        (["_private"], "must not start with '_'"),
        (["no-dashes"], "only letters, digits and '_'"),
        (["../admin"], "only letters, digits and '_'"),
        (["", "  "], "at least one subreddit"),
    ],
)
def test_invalid_names_are_refused_with_the_reason(names: list[str], reason: str) -> None:
    with pytest.raises(InvalidSubreddits, match=reason):
        normalize_subreddits(names)


async def test_put_stores_the_cleaned_list_and_get_reads_it(
    pipeline: Pipeline, redis: Redis, keys: Keys
) -> None:
    async with httpx.AsyncClient(base_url=pipeline.api_url) as api:
        before = (await api.get("/config/reddit/subreddits")).json()
        put = await api.put(
            "/config/reddit/subreddits", json={"subreddits": ["Gaming", "gifs", "gaming"]}, headers=ADMIN
        )
        after = (await api.get("/config/reddit/subreddits")).json()
    assert before == {"subreddits": [], "source": "none"}
    assert put.status_code == 200 and put.json()["subreddits"] == ["gaming", "gifs"]
    assert after == {"subreddits": ["gaming", "gifs"], "source": "stored"}
    assert json.loads(await redis.get(keys.reddit_subreddits)) == ["gaming", "gifs"]


async def test_put_refuses_bad_names_and_missing_or_wrong_keys(
    pipeline: Pipeline, redis: Redis, keys: Keys
) -> None:
    path = "/config/reddit/subreddits"
    async with httpx.AsyncClient(base_url=pipeline.api_url) as api:
        invalid = await api.put(path, json={"subreddits": ["ok_name", "-bad-"]}, headers=ADMIN)
        empty = await api.put(path, json={"subreddits": []}, headers=ADMIN)
        anonymous = await api.put(path, json={"subreddits": ["gaming"]})
        producer = await api.put(path, json={"subreddits": ["gaming"]}, headers=PRODUCER)
    assert invalid.status_code == 422 and "'-bad-'" in invalid.text
    assert empty.status_code == 422 and "at least one" in empty.text
    assert (anonymous.status_code, producer.status_code) == (401, 403)
    assert await redis.get(keys.reddit_subreddits) is None


async def test_get_falls_back_to_the_api_environment(api_settings: Settings, redis: Redis) -> None:
    with running_pipeline(api_settings.model_copy(update={"reddit_subreddit": "PlayCanvas"})) as pipeline:
        async with httpx.AsyncClient(base_url=pipeline.api_url) as api:
            body = (await api.get("/config/reddit/subreddits")).json()
    assert body == {"subreddits": ["playcanvas"], "source": "env"}


async def test_precedence_flags_then_api_then_env_when_the_api_is_unreachable(
    polling: Settings, pipeline: Pipeline
) -> None:
    env = polling.model_copy(update={"reddit_subreddits": ["fromenv"]})
    unreachable = env.model_copy(update={"ingest_api_url": f"http://127.0.0.1:{free_port()}"})
    async with httpx.AsyncClient(base_url=pipeline.api_url, timeout=5.0) as http:
        await http.put("/config/reddit/subreddits", json={"subreddits": ["fromapi"]}, headers=ADMIN)
        flags = await resolve_targets(
            env, IngestApiClient.from_settings(http, env, TINY_RETRY), ["FromFlag"], ["hot"]
        )
        api = await resolve_targets(env, IngestApiClient.from_settings(http, env, TINY_RETRY), [], [])
        fallback = await resolve_targets(
            unreachable, IngestApiClient.from_settings(http, unreachable, TINY_RETRY), [], []
        )
    assert (flags.subreddits, flags.sorts, flags.origin) == (["fromflag"], ["hot"], "flags")
    assert (api.subreddits, api.sorts, api.origin) == (["fromapi"], ["new", "hot"], "api")
    assert (fallback.subreddits, fallback.origin) == (["fromenv"], "env")


async def test_trigger_needs_the_admin_key_and_validates_names(
    pipeline: Pipeline, redis: Redis, keys: Keys
) -> None:
    async with httpx.AsyncClient(base_url=pipeline.api_url) as api:
        anonymous = await api.post("/admin/trigger-poll")
        producer = await api.post("/admin/trigger-poll", headers=PRODUCER)
        invalid = await api.post("/admin/trigger-poll", json={"subreddits": ["x"]}, headers=ADMIN)
        accepted = await api.post("/admin/trigger-poll", headers=ADMIN)
    assert (anonymous.status_code, producer.status_code, invalid.status_code) == (401, 403, 422)
    assert accepted.status_code == 202
    entries = await redis.xrange(keys.poll_requests_stream)
    assert [entry_id for entry_id, _ in entries] == [accepted.json()["request_id"]]


async def test_a_triggered_poll_is_served_by_one_replica_and_acked(
    polling: Settings, pipeline: Pipeline, reddit: RedditServer, redis: Redis, keys: Keys
) -> None:
    async with httpx.AsyncClient(timeout=5.0) as http:
        await http.put(
            f"{pipeline.api_url}/config/reddit/subreddits", json={"subreddits": ["gifs"]}, headers=ADMIN
        )
        trigger = await http.post(
            f"{pipeline.api_url}/admin/trigger-poll", json={"subreddits": REAL_SUBREDDITS[:1]}, headers=ADMIN
        )
        first = fast_poller(polling, http)
        second = fast_poller(polling.model_copy(update={"consumer_name": "poller-test-2"}), http)
        first_requests = ProducerRequests(
            IngestApiClient.from_settings(http, polling, TINY_RETRY), "poller", "poller-test-1"
        )
        second_requests = ProducerRequests(
            IngestApiClient.from_settings(http, polling, TINY_RETRY), "poller", "poller-test-2"
        )
        served_by_first = await serve_requests(first.serve, first_requests, 1.0)
        served_by_second = await serve_requests(second.serve, second_requests, 0.0)
    await drained(pipeline)

    assert trigger.status_code == 202
    assert (served_by_first, served_by_second) == (1, 0)
    assert [r.path for r in reddit.listing_requests()] == ["/r/gaming/new.json", "/r/gaming/hot.json"]
    assert await redis.exists(keys.feedback_external("reddit", "58hakw"))
    pending = await redis.xpending(keys.poll_requests_stream, "poller")
    assert pending["pending"] == 0


async def test_a_looping_poller_wakes_early_for_a_request(
    polling: Settings, pipeline: Pipeline, reddit: RedditServer, redis: Redis, keys: Keys
) -> None:
    async with httpx.AsyncClient(timeout=30.0) as http:
        await http.put(
            f"{pipeline.api_url}/config/reddit/subreddits", json={"subreddits": ["gifs"]}, headers=ADMIN
        )
        poller = fast_poller(polling, http)
        loop = asyncio.ensure_future(poller.run_forever(3600, LoopHeartbeat()))
        await eventually(listing_requests(reddit, 2))  # the first round: gifs new + hot
        await http.post(
            f"{pipeline.api_url}/admin/trigger-poll", json={"subreddits": ["gaming"]}, headers=ADMIN
        )
        await eventually(listing_requests(reddit, 4))  # long before the hour is up
        await eventually(no_pending_poll_requests(redis, keys))  # served, then acked
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    await drained(pipeline)

    assert [r.path for r in reddit.listing_requests()][2:] == ["/r/gaming/new.json", "/r/gaming/hot.json"]
    assert await redis.exists(keys.feedback_external("reddit", "58hakw"))


def listing_requests(reddit: RedditServer, count: int) -> Callable[[], Awaitable[bool]]:
    async def reached() -> bool:
        return len(reddit.listing_requests()) >= count

    return reached


def no_pending_poll_requests(redis: Redis, keys: Keys) -> Callable[[], Awaitable[bool]]:
    async def acked() -> bool:
        return bool((await redis.xpending(keys.poll_requests_stream, "poller"))["pending"] == 0)

    return acked
