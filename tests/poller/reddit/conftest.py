"""The Reddit-shaped server, the real ingest API and worker on the test Redis, and poller settings."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence

import httpx
import pytest
from redis.asyncio import Redis

from services.poller.reddit.process import RedditPoller
from services.poller.reddit.round import RoundReport
from shared.retry_policy import RetryPolicy
from shared.settings import Settings
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.reddit_server import RedditServer

TINY_RETRY = RetryPolicy(attempts=4, initial_delay_seconds=0.001, max_delay_seconds=0.01)
ADMIN_KEY = "admin-secret"
PRODUCER_KEY = "producer-secret"
REAL_SUBREDDITS = ["gaming", "gifs", "nintendo"]  # one captured post each


@pytest.fixture
def reddit() -> Iterator[RedditServer]:
    with RedditServer() as server:
        yield server


@pytest.fixture
def api_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"admin_api_key": ADMIN_KEY, "ingest_api_keys": [PRODUCER_KEY]})


@pytest.fixture
def pipeline(redis: Redis, api_settings: Settings) -> Iterator[Pipeline]:
    """After `redis` (which flushes the database), so the worker's group survives the flush."""
    with running_pipeline(api_settings) as running:
        yield running


def poller_settings(settings: Settings, api_url: str, reddit_url: str, **overrides: object) -> Settings:
    return settings.model_copy(
        update={
            "ingest_api_url": api_url,
            "ingest_api_key": PRODUCER_KEY,
            "reddit_base_url": reddit_url,
            "reddit_oauth_base_url": reddit_url,
            "reddit_sorts": ["new", "hot"],
            "consumer_name": "poller-test-1",
            **overrides,
        }
    )


@pytest.fixture
def polling(settings: Settings, pipeline: Pipeline, reddit: RedditServer) -> Settings:
    return poller_settings(settings, pipeline.api_url, reddit.url)


def fast_poller(
    settings: Settings, http: httpx.AsyncClient, subreddits: Sequence[str] = (), sorts: Sequence[str] = ()
) -> RedditPoller:
    """Tiny retry waits and no per-subreddit spacing, so tests never sleep for real."""
    return RedditPoller(
        settings,
        http,
        subreddit_flags=subreddits,
        sort_flags=sorts,
        retry=TINY_RETRY,
        request_interval_seconds=0.0,
    )


async def poll_round(
    settings: Settings, subreddits: Sequence[str] = (), sorts: Sequence[str] = ()
) -> RoundReport:
    """One round by a fresh poller, as after a restart: it remembers nothing."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        return await fast_poller(settings, http, subreddits, sorts).poll_configured()


async def drained(pipeline: Pipeline) -> None:
    await asyncio.to_thread(pipeline.wait_until_ingested)
