"""`soulcaster dev`: everything in one process, for a first look and for demos."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    dev = commands.add_parser("dev", help="run the whole pipeline locally on a bundled sample")
    dev.add_argument(
        "--keep", action="store_true", help="keep the previous dev run's keys (default: clear them)"
    )
    dev.add_argument("--serve", action="store_true", help="keep the API and workers running afterwards")
    dev.add_argument("--reddit", action="store_true", help="poll reddit.com, not a local Reddit-like server")
    dev.add_argument(
        "--data-dir", type=Path, default=Path(".soulcaster/redis"), help="local Redis data folder"
    )
    dev.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from services.dev.local_redis import LocalRedisError, RedisServer, reachable
    from services.dev.run import DEV_PREFIX, run_dev
    from shared.settings import get_settings

    settings = get_settings()
    settings = settings.model_copy(update={"key_prefix": settings.key_prefix or DEV_PREFIX})
    local_redis = None
    if not reachable(settings.redis_url):
        try:
            local_redis = RedisServer.for_url(settings.redis_url, args.data_dir).start()
        except LocalRedisError as exc:
            print(exc, file=sys.stderr)
            return 1
        print(f"Started a local Redis at {settings.redis_url} (data in {args.data_dir})")
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_dev(settings, fresh=not args.keep, serve=args.serve, use_reddit=args.reddit))
    finally:
        if local_redis is not None:
            local_redis.stop()
    return 0
