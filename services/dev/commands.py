"""`soulcaster dev`: everything in one process, for a first look and for demos."""

from __future__ import annotations

import argparse
import asyncio
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
    from services.dev.local_redis import LocalRedisError, redis_for_dev
    from services.dev.run import DEV_PREFIX, DevAlreadyRunning, run_dev, until_signalled
    from shared.settings import get_settings

    settings = get_settings()
    settings = settings.model_copy(update={"key_prefix": settings.key_prefix or DEV_PREFIX})
    url, prefix = settings.redis_url, settings.key_prefix
    try:
        with redis_for_dev(url, args.data_dir) as started:
            if started:
                print(f"Started a local Redis at {url} (data in {args.data_dir}); it stops with this run")
            else:
                print(f"Using the Redis already running at {url}")
            print(f"Keys go under the prefix '{prefix}' (operator commands: SOULCASTER_KEY_PREFIX={prefix})")
            job = run_dev(settings, fresh=not args.keep, serve=args.serve, use_reddit=args.reddit)
            if asyncio.run(until_signalled(job)):
                print("Stopped: the API and workers shut down cleanly")
            print(
                f"The run's keys stay in Redis at {url} under the prefix '{prefix}'"
                + ("" if started else " (that Redis keeps running)")
                + ": the next `soulcaster dev` clears them, `--keep` keeps them"
            )
    except (LocalRedisError, DevAlreadyRunning) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
