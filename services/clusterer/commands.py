"""`soulcaster clusterer` (one consumer of the `clusterer` group, sweeping now and then) and
`soulcaster sweep` (one sweep, for operators and cron jobs)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random

log = logging.getLogger(__name__)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    clusterer = commands.add_parser("clusterer", help="run one consumer of the `clusterer` group")
    clusterer.set_defaults(handler=run_clusterer)
    sweep = commands.add_parser("sweep", help="re-enqueue unclustered items that have no pending event")
    sweep.set_defaults(handler=run_sweep)


def run_clusterer(args: argparse.Namespace) -> int:
    from services.clusterer.worker import build_clusterer_consumer
    from shared.keys import Keys
    from shared.redis_connection import connect
    from shared.settings import get_settings
    from shared.worker_process import serve_worker

    settings = get_settings()
    redis = connect(settings)
    keys = Keys(settings.key_prefix)
    consumer = build_clusterer_consumer(settings, redis, keys)

    async def serve() -> None:
        sweeping = asyncio.create_task(_sweep_periodically(settings.sweep_interval_seconds))
        try:
            await serve_worker(settings, redis, consumer)
        finally:
            sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeping

    asyncio.run(serve())
    return 0


async def _sweep_periodically(interval_seconds: float) -> None:
    """Jittered so replicas started together do not all sweep in the same instant; its own client,
    because the worker's is closed on shutdown. A failed sweep is logged and retried next time."""
    from services.clusterer.sweeper import Sweeper
    from shared.keys import Keys
    from shared.redis_connection import connect
    from shared.settings import get_settings

    settings = get_settings()
    redis = connect(settings)
    sweeper = Sweeper(redis, Keys(settings.key_prefix))
    try:
        while True:
            await asyncio.sleep(interval_seconds * random.uniform(0.5, 1.0))
            try:
                result = await sweeper.sweep()
            except Exception:
                log.exception("sweep failed")
                continue
            if result.requeued or result.dropped:
                log.info("swept", extra={"requeued": result.requeued, "dropped": result.dropped})
    finally:
        await redis.aclose()


def run_sweep(args: argparse.Namespace) -> int:
    from services.clusterer.sweeper import Sweeper
    from shared.keys import Keys
    from shared.redis_connection import connect
    from shared.settings import get_settings

    async def sweep_once() -> None:
        settings = get_settings()
        redis = connect(settings)
        try:
            result = await Sweeper(redis, Keys(settings.key_prefix)).sweep()
        finally:
            await redis.aclose()
        print(f"re-enqueued {result.requeued}, dropped {result.dropped} missing items")

    asyncio.run(sweep_once())
    return 0
