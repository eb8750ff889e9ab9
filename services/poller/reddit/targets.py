"""Which listings the poller reads. The precedence is decided here and nowhere else:

Subreddits
  1. `--subreddit` flags;
  2. else the ingest API's `GET /config/reddit/subreddits` (what operators set with `PUT`; the API
     itself answers from its own `REDDIT_SUBREDDITS` / `REDDIT_SUBREDDIT` when nothing is stored);
  3. else, whenever the API gives none (it has none configured, or cannot be reached), this
     process's own `REDDIT_SUBREDDITS`, then the legacy single `REDDIT_SUBREDDIT`.
Sorts
  1. `--sort` flags; 2. else `REDDIT_SORTS` (default `new`); unknown sorts there are dropped and logged.

The configuration is read again every round, so a `PUT` takes effect without a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from services.poller.producer.ingest_client import IngestApiClient, IngestApiRejected
from services.poller.reddit.listing import SORTS, Listing
from shared.retry_policy import RemoteUnavailableError
from shared.settings import Settings
from shared.subreddit_names import InvalidSubreddits, normalize_subreddits, subreddits_from_env

log = logging.getLogger(__name__)

CONFIG_PATH = "/config/reddit/subreddits"


@dataclass(frozen=True)
class PollTargets:
    subreddits: list[str]
    sorts: list[str]
    origin: str  # "flags", "api" or "env": where the subreddits came from ("api": also none at all)

    @property
    def listings(self) -> list[Listing]:
        return [Listing(subreddit, sort) for subreddit in self.subreddits for sort in self.sorts]


def valid_sorts(sorts: Sequence[str]) -> list[str]:
    kept = [sort for sort in dict.fromkeys(s.strip().lower() for s in sorts) if sort in SORTS]
    if dropped := [sort for sort in sorts if sort.strip().lower() not in SORTS]:
        log.warning("unknown sorts ignored", extra={"sorts": dropped, "allowed": SORTS})
    return kept


async def subreddits_from_api(api: IngestApiClient) -> list[str] | None:
    """None when the API cannot be reached (or predates the route)."""
    try:
        body = await api.get_json(CONFIG_PATH)
        return normalize_subreddits(body["subreddits"])
    except (IngestApiRejected, RemoteUnavailableError) as error:
        log.warning("subreddit config unavailable from the API", extra={"error": str(error)})
        return None
    except (InvalidSubreddits, KeyError, TypeError, ValueError) as error:
        log.warning("subreddit config from the API unusable", extra={"error": str(error)})
        return []


async def resolve_targets(
    settings: Settings, api: IngestApiClient, subreddit_flags: Sequence[str], sort_flags: Sequence[str]
) -> PollTargets:
    sorts = valid_sorts(sort_flags or settings.reddit_sorts)
    if subreddit_flags:
        return PollTargets(normalize_subreddits(subreddit_flags), sorts, "flags")
    from_api = await subreddits_from_api(api)
    if from_api:
        return PollTargets(from_api, sorts, "api")
    from_env = subreddits_from_env(settings)
    if from_env or from_api is None:
        return PollTargets(from_env, sorts, "env")
    return PollTargets([], sorts, "api")
