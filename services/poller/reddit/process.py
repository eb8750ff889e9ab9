"""The Reddit poller process: configured listings every interval, and "poll now" requests between.

It is a stateless producer: it talks only to Reddit and to the ingest API, never to Redis. What it
remembers (ETags, ids sent) is a memory-only optimisation; the ingest group's dedupe is the guarantee.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

import httpx

from services.poller.producer.ingest_client import IngestApiClient
from services.poller.producer.producer_loop import run_rounds
from services.poller.producer.requests_client import ProducerRequest, ProducerRequests
from services.poller.producer.throttle import Throttle
from services.poller.reddit.auth import RedditAppAuth
from services.poller.reddit.handover_memory import HandoverMemory
from services.poller.reddit.listing import Listing, RedditClient
from services.poller.reddit.round import RedditRound, RoundReport
from services.poller.reddit.targets import PollTargets, resolve_targets
from shared.keys import POLLER_GROUP, PollRequestField
from shared.loop_process import LoopHeartbeat
from shared.retry_policy import RetryPolicy
from shared.settings import Settings
from shared.subreddit_names import InvalidSubreddits, normalize_subreddits

log = logging.getLogger(__name__)

REDDIT_REQUEST_INTERVAL_SECONDS = 1.0  # Reddit's rule: at most one request per second per subreddit
CONFIG_RETRY = RetryPolicy(attempts=2, initial_delay_seconds=0.5, max_delay_seconds=2.0)


class RedditPoller:
    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient,
        *,
        subreddit_flags: Sequence[str] = (),
        sort_flags: Sequence[str] = (),
        retry: RetryPolicy | None = None,
        config_retry: RetryPolicy = CONFIG_RETRY,
        request_interval_seconds: float = REDDIT_REQUEST_INTERVAL_SECONDS,
    ) -> None:
        """`retry` and `request_interval_seconds` are for tests; production keeps the defaults."""
        self._settings = settings
        self._subreddit_flags = list(subreddit_flags)
        self._sort_flags = list(sort_flags)
        retry = retry or RetryPolicy()
        api = IngestApiClient.from_settings(http, settings, retry)
        self._config_api = IngestApiClient.from_settings(http, settings, config_retry)
        self._requests = ProducerRequests(api, POLLER_GROUP, settings.consumer_name)
        self._round = RedditRound(
            _reddit_client(settings, http, retry, Throttle(request_interval_seconds)),
            api,
            HandoverMemory(),
            batch_items=min(settings.max_batch_items, 100),
            batch_bytes=settings.max_body_bytes // 2,
        )

    async def targets(self) -> PollTargets:
        return await resolve_targets(
            self._settings, self._config_api, self._subreddit_flags, self._sort_flags
        )

    async def poll_configured(self) -> RoundReport:
        targets = await self.targets()
        if not targets.listings:
            log.warning("no subreddits configured: nothing to poll", extra={"origin": targets.origin})
        return await self._round.run(targets.listings)

    async def serve(self, request: ProducerRequest) -> RoundReport:
        """A request names subreddits to poll now, or none for every configured one."""
        try:
            named = json.loads(request.fields.get(PollRequestField.SUBREDDITS) or "[]")
            subreddits = normalize_subreddits(named) if named else []
        except (ValueError, TypeError, InvalidSubreddits) as error:
            log.warning("poll request dropped", extra={"request": request.id, "error": str(error)})
            return RoundReport()
        if not subreddits:
            return await self.poll_configured()
        sorts = (await self.targets()).sorts
        return await self._round.run([Listing(name, sort) for name in subreddits for sort in sorts])

    async def run_forever(self, interval_seconds: float, heartbeat: LoopHeartbeat) -> None:
        await run_rounds(self.poll_configured, self.serve, self._requests, interval_seconds, heartbeat)


def _reddit_client(
    settings: Settings, http: httpx.AsyncClient, retry: RetryPolicy, throttle: Throttle
) -> RedditClient:
    """Public JSON on `REDDIT_BASE_URL`, or app-only OAuth on `REDDIT_OAUTH_BASE_URL` with credentials."""
    auth = None
    base_url = settings.reddit_base_url
    if settings.reddit_client_id and settings.reddit_client_secret:
        auth = RedditAppAuth(
            http,
            base_url=settings.reddit_base_url,
            client_id=settings.reddit_client_id,
            client_secret=settings.reddit_client_secret,
            user_agent=settings.reddit_user_agent,
            retry=retry,
        )
        base_url = settings.reddit_oauth_base_url
    return RedditClient(
        http,
        base_url=base_url,
        user_agent=settings.reddit_user_agent,
        throttle=throttle,
        retry=retry,
        auth=auth,
    )
