"""The poller's own REDDIT_SUBREDDITS is the fallback whenever the API has none, not only when it is down."""

from __future__ import annotations

import httpx

from services.poller.producer.ingest_client import IngestApiClient
from services.poller.reddit.targets import resolve_targets
from shared.settings import Settings
from tests.poller.reddit.conftest import TINY_RETRY
from tests.support.pipeline import Pipeline


async def test_the_poller_environment_is_used_when_the_api_has_no_subreddits(
    polling: Settings, pipeline: Pipeline
) -> None:
    env = polling.model_copy(update={"reddit_subreddits": ["FromEnv"]})
    async with httpx.AsyncClient(base_url=pipeline.api_url, timeout=5.0) as http:
        answered = (await http.get("/config/reddit/subreddits")).json()
        targets = await resolve_targets(env, IngestApiClient.from_settings(http, env, TINY_RETRY), [], [])
    assert answered == {"subreddits": [], "source": "none"}, "the API itself has none configured"
    assert (targets.subreddits, targets.origin) == (["fromenv"], "env")


async def test_with_none_anywhere_the_targets_are_empty_and_say_the_api_answered(
    polling: Settings, pipeline: Pipeline
) -> None:
    bare = polling.model_copy(update={"reddit_subreddits": [], "reddit_subreddit": ""})
    async with httpx.AsyncClient(base_url=pipeline.api_url, timeout=5.0) as http:
        targets = await resolve_targets(bare, IngestApiClient.from_settings(http, bare, TINY_RETRY), [], [])
    assert (targets.subreddits, targets.origin) == ([], "api")
