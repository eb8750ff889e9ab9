"""`soulcaster poller`: the Reddit poller, one round (`--once`) or a loop that also serves "poll now"."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from services.poller.reddit.listing import SORTS

if TYPE_CHECKING:
    from shared.settings import Settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    poller = commands.add_parser(
        "poller",
        help="poll Reddit listings and hand new posts to the ingest API",
        description="Subreddits: --subreddit, else the API's /config/reddit/subreddits, else "
        "REDDIT_SUBREDDITS / REDDIT_SUBREDDIT when the API is unreachable. Sorts: --sort, else REDDIT_SORTS.",
    )
    poller.add_argument("--once", action="store_true", help="one round, then exit (1 if anything was left)")
    poller.add_argument("--subreddit", action="append", default=[], metavar="NAME", help="repeatable")
    poller.add_argument("--sort", action="append", default=[], choices=SORTS, help="repeatable")
    poller.add_argument(
        "--interval",
        type=float,
        default=None,
        metavar="S",
        help="seconds between rounds (REDDIT_POLL_INTERVAL_SECONDS)",
    )
    poller.set_defaults(handler=run_poller)


def run_poller(args: argparse.Namespace) -> int:
    from shared.settings import get_settings

    settings = get_settings()
    interval = settings.reddit_poll_interval_seconds if args.interval is None else args.interval
    return asyncio.run(_run(settings, args.subreddit, args.sort, None if args.once else interval))


async def _run(settings: Settings, subreddits: list[str], sorts: list[str], interval: float | None) -> int:
    import httpx

    from services.poller.producer.producer_loop import PRODUCER_STALE_SECONDS
    from services.poller.reddit.process import RedditPoller
    from shared.loop_process import LoopHeartbeat, run_until_signalled

    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0)) as http:
        poller = RedditPoller(settings, http, subreddit_flags=subreddits, sort_flags=sorts)
        if interval is None:
            return 0 if (await poller.poll_configured()).complete else 1
        heartbeat = LoopHeartbeat()
        await run_until_signalled(
            poller.run_forever(interval, heartbeat), settings, heartbeat, PRODUCER_STALE_SECONDS
        )
        return 0
