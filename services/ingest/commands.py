"""`soulcaster` subcommands of the ingest service."""

from __future__ import annotations

import argparse
import asyncio


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = commands.add_parser("ingest-worker", help="run one consumer of the `ingest` group")
    worker.set_defaults(handler=run_ingest_worker)


def run_ingest_worker(args: argparse.Namespace) -> int:
    from services.ingest.worker import build_ingest_consumer
    from shared.keys import Keys
    from shared.redis_connection import connect
    from shared.settings import get_settings
    from shared.worker_process import serve_worker

    settings = get_settings()
    redis = connect(settings)
    consumer = build_ingest_consumer(settings, redis, Keys(settings.key_prefix))
    asyncio.run(serve_worker(settings, redis, consumer))
    return 0
