"""`soulcaster` subcommands of the ingest service."""

from __future__ import annotations

import argparse
import asyncio
import sys

from shared.keys import Keys
from shared.settings import Settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    api = commands.add_parser("api", help="run the ingest HTTP API")
    api.add_argument("--host", default=None, help="bind address (default API_HOST)")
    api.add_argument("--port", type=int, default=None, help="port (default API_PORT)")
    api.set_defaults(handler=run_api)
    worker = commands.add_parser("ingest-worker", help="run one consumer of the `ingest` group")
    worker.set_defaults(handler=run_ingest_worker)
    replay = commands.add_parser(
        "replay", help="re-apply a range of stream:ingest through the current normalizers"
    )
    replay.add_argument("--start", default="-", help="entry id, millisecond time or ISO-8601 time")
    replay.add_argument("--end", default="+")
    replay.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    replay.add_argument(
        "--partition",
        default="",
        metavar="SET",
        help="the partitions to replay: e.g. 2 or 0-3,7 (default all)",
    )
    replay.set_defaults(handler=run_replay)
    index = commands.add_parser(
        "index-sources",
        help="add the sources of items stored before feedback:sources existed (run once, every partition)",
    )
    index.set_defaults(handler=run_index_sources)


def run_ingest_worker(args: argparse.Namespace) -> int:
    from services.ingest.worker import build_ingest_consumer
    from shared.redis_connection import connect
    from shared.settings import get_settings
    from shared.worker_process import serve_worker

    settings = get_settings()
    redis = connect(settings)
    keys = settings.keys()
    consumers = [build_ingest_consumer(settings, redis, keys.partition(i)) for i in settings.owned_partitions]
    asyncio.run(serve_worker(settings, redis, consumers))
    return 0


def run_api(args: argparse.Namespace) -> int:
    """One uvicorn worker per process: scale with replicas, not forks, so each pod has one Redis pool."""
    import uvicorn

    from services.api.app import create_app
    from shared.settings import get_settings

    settings = get_settings()
    uvicorn.run(
        create_app(settings),
        host=args.host or settings.api_host,
        port=settings.api_port if args.port is None else args.port,
        workers=1,
        proxy_headers=True,
        timeout_graceful_shutdown=20,
        log_config=None,
    )
    return 0


def run_replay(args: argparse.Namespace) -> int:
    from redis.asyncio import Redis

    from services.ingest.normalizers import NORMALIZERS
    from services.ingest.replay import ReplayReport, replay_partitions
    from shared.operations.commands import chosen_partitions, with_redis

    async def replay(redis: Redis, keys: Keys, settings: Settings) -> ReplayReport:
        partitions = chosen_partitions(keys, args.partition)
        ttl = settings.event_outcome_ttl_seconds
        span = (args.start, args.end)
        return await replay_partitions(redis, partitions, NORMALIZERS, ttl, span, args.dry_run)

    try:
        report = with_redis(replay)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    verb = "would be" if args.dry_run else "were"
    print(f"{report.entries} entries replayed; outcomes that {verb} applied:")
    for outcome, count in sorted(report.outcomes.items()):
        print(f"  {outcome}: {count}")
    for entry_id, reason in report.invalid.items():
        print(f"  invalid {entry_id}: {reason}")
    return 0


def run_index_sources(args: argparse.Namespace) -> int:
    from redis.asyncio import Redis

    from services.ingest.source_index import backfill_sources
    from shared.operations.commands import with_redis

    async def index(redis: Redis, keys: Keys, settings: Settings) -> set[str]:
        found: set[str] = set()
        for part in keys.partitions:
            found |= await backfill_sources(redis, part)
        return found

    found = with_redis(index)
    print(f"{len(found)} sources indexed: {', '.join(sorted(found)) or 'none'}")
    return 0
