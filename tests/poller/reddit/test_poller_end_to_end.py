"""The poller against a Reddit-shaped server and the real ingest API + worker on real Redis."""

from __future__ import annotations

import json

import httpx
from redis.asyncio import Redis

from shared.keys import Keys
from shared.settings import Settings
from tests.poller.reddit.conftest import (
    PRODUCER_KEY,
    REAL_SUBREDDITS,
    drained,
    fast_poller,
    poll_round,
    poller_settings,
)
from tests.support.pipeline import Pipeline, running_pipeline
from tests.support.reddit_server import RedditServer, fixture_children, reddit_error, too_many_requests

REAL_POST_IDS = sorted(child["data"]["id"] for child in fixture_children())


async def stored_reddit_items(redis: Redis, keys: Keys) -> dict[str, dict[str, str]]:
    """external id -> stored hash, for every Reddit item in `feedback:*`."""
    ids = await redis.zrange(keys.feedback_source("reddit"), 0, -1)
    items = [await redis.hgetall(keys.feedback(item_id)) for item_id in ids]
    return {item["external_id"]: item for item in items}


async def test_every_post_lands_once_across_subreddits_sorts_and_rounds(
    polling: Settings, pipeline: Pipeline, reddit: RedditServer, redis: Redis, keys: Keys
) -> None:
    first = await poll_round(polling, REAL_SUBREDDITS)
    second = await poll_round(polling, REAL_SUBREDDITS)
    await drained(pipeline)

    stored = await stored_reddit_items(redis, keys)
    assert sorted(stored) == REAL_POST_IDS
    assert first.complete and first.handed_over == 3  # hot repeats new's posts: sent once per subreddit
    assert second.complete and second.handed_over == 3  # a fresh poller resends; the ingest group dedupes
    assert await redis.zcard(keys.feedback_source("reddit")) == 3
    gaming = stored["58hakw"]
    assert gaming["title"] == "Red Dead Redemption 2 Official Trailer"
    assert '"subreddit":"gaming"' in gaming["metadata"]


async def test_nothing_is_lost_when_the_api_is_down_for_the_first_round(
    settings: Settings, api_settings: Settings, reddit: RedditServer, redis: Redis, keys: Keys
) -> None:
    with running_pipeline(api_settings, api=False) as pipeline:
        polling = poller_settings(settings, pipeline.api_url, reddit.url)
        async with httpx.AsyncClient(timeout=5.0) as http:
            poller = fast_poller(polling, http, REAL_SUBREDDITS)
            down = await poller.poll_configured()
            pipeline.start_api()
            up = await poller.poll_configured()
        await drained(pipeline)

    assert down.ingest_error and down.handed_over == 0
    assert up.complete and up.handed_over == 3
    assert sorted(await stored_reddit_items(redis, keys)) == REAL_POST_IDS
    listing_requests = reddit.listing_requests()
    assert listing_requests[0].path == "/r/gaming/new.json"  # the round ended at the outage ...
    assert listing_requests[1].path == "/r/gaming/new.json"  # ... and the next started over
    # a listing whose posts were not handed over left no ETag behind, so it was read in full again
    assert not any("if-none-match" in request.headers for request in listing_requests)


async def test_a_remembered_listing_is_asked_for_conditionally_and_only_new_posts_are_sent(
    polling: Settings, pipeline: Pipeline, reddit: RedditServer, redis: Redis, keys: Keys
) -> None:
    async with httpx.AsyncClient(timeout=5.0) as http:
        poller = fast_poller(polling, http, ["gaming"], ["new"])
        first = await poller.poll_configured()
        unchanged = await poller.poll_configured()
        reddit.add_post("gaming", "zz0001", "Controller disconnects every few minutes")
        changed = await poller.poll_configured()
    await drained(pipeline)

    assert (first.handed_over, unchanged.handed_over, unchanged.not_modified) == (1, 0, 1)
    assert changed.handed_over == 1  # only the new post, not the listing again
    requests = reddit.listing_requests()
    assert "if-none-match" not in requests[0].headers
    assert requests[1].headers["if-none-match"] == requests[2].headers["if-none-match"]
    assert set(await stored_reddit_items(redis, keys)) == {"58hakw", "zz0001"}


async def test_throttling_errors_and_dropped_connections_are_retried(
    polling: Settings, pipeline: Pipeline, reddit: RedditServer, redis: Redis, keys: Keys
) -> None:
    reddit.fail_next(too_many_requests(retry_after=1), reddit_error(500, "Internal Server Error"))
    reddit.drop_next(1)
    report = await poll_round(polling, ["gaming"], ["new"])
    await drained(pipeline)

    assert report.complete and report.handed_over == 1
    assert len(reddit.listing_requests()) == 3 + 1  # drop, 429, 500, then the listing
    assert all(r.headers["user-agent"] == polling.reddit_user_agent for r in reddit.listing_requests())
    assert set(await stored_reddit_items(redis, keys)) == {"58hakw"}


async def test_a_listing_that_keeps_failing_is_skipped_and_the_others_go_on(
    polling: Settings, pipeline: Pipeline, reddit: RedditServer, redis: Redis, keys: Keys
) -> None:
    reddit.fail_next(*[reddit_error(503, "Service Unavailable")] * 4)  # all attempts of the first listing
    report = await poll_round(polling, ["gaming", "gifs"], ["new"])
    await drained(pipeline)

    assert report.skipped.keys() == {"gaming/new"}
    assert report.handed_over == 1 and not report.complete
    assert set(await stored_reddit_items(redis, keys)) == {"58h5q4"}


async def test_the_demo_round_fills_the_pipeline_from_the_bundled_listing(
    api_settings: Settings, pipeline: Pipeline, redis: Redis, keys: Keys
) -> None:
    from services.poller.reddit.demo import DEMO_LISTING, demo_round

    report = await demo_round(
        pipeline.api_url,
        use_reddit=False,
        settings=api_settings.model_copy(update={"ingest_api_key": PRODUCER_KEY}),
    )
    await drained(pipeline)

    listed = json.loads(DEMO_LISTING.read_text())["data"]["children"]
    assert report.complete and report.handed_over == len(listed) == 25
    stored = await stored_reddit_items(redis, keys)
    assert sorted(stored) == sorted(child["data"]["id"] for child in listed)
    titles = " ".join(item["title"] for item in stored.values()).lower()
    assert all(theme in titles for theme in ("login", "csv", "dark mode", "invoice", "slow"))
