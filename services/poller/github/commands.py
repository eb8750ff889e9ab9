"""`soulcaster github-sync`: the GitHub issues sync producer."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.github_repository import Repository
    from shared.settings import Settings


log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sync = commands.add_parser("github-sync", help="sync GitHub issues into the ingest API")
    sync.add_argument("--once", action="store_true", help="one round over the repositories, then exit")
    sync.add_argument(
        "--repo",
        action="append",
        metavar="OWNER/REPO",
        help="a repository to sync (repeatable; default: GITHUB_REPOS)",
    )
    sync.add_argument(
        "--interval",
        type=float,
        metavar="S",
        help="seconds between rounds (default: GITHUB_SYNC_INTERVAL_SECONDS)",
    )
    sync.set_defaults(handler=run_github_sync)


def run_github_sync(args: argparse.Namespace) -> int:
    """Exit 0 when every repository synced (or on SIGTERM), 1 when one failed in `--once`, 2 on bad input."""
    from shared.github_repository import Repository
    from shared.settings import get_settings

    settings = get_settings()
    try:
        repos = [Repository.parse(name) for name in (args.repo or settings.github_repos)]
    except ValueError as exc:
        print(f"github-sync: {exc}", file=sys.stderr)
        return 2
    if not repos and args.once:
        print("github-sync: no repositories (set GITHUB_REPOS or pass --repo owner/repo)", file=sys.stderr)
        return 2
    if not repos:
        # In loop mode it still serves `POST /admin/github-sync` requests, which name the repository.
        log.warning("no repositories configured; serving sync requests only")
    interval = settings.github_sync_interval_seconds if args.interval is None else args.interval
    return asyncio.run(_run(settings, repos, interval, once=args.once))


async def _run(settings: Settings, repos: list[Repository], interval: float, *, once: bool) -> int:
    import httpx

    from services.poller.github.sync_process import GitHubSyncProcess
    from services.poller.producer.producer_loop import PRODUCER_STALE_SECONDS
    from shared.loop_process import LoopHeartbeat, run_until_signalled

    async with httpx.AsyncClient(timeout=30.0) as http:
        process = GitHubSyncProcess.from_settings(settings, http, repos, interval)
        if once:
            return 1 if await process.sync_all() else 0
        heartbeat = LoopHeartbeat()
        await run_until_signalled(process.run_forever(heartbeat), settings, heartbeat, PRODUCER_STALE_SECONDS)
        return 0
