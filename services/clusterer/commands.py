"""`soulcaster clusterer` (a consumer of the `clusterer` group per owned partition, sweeping and
consolidating now and then), `soulcaster sweep` (one sweep, for operators and cron jobs),
`soulcaster consolidate` (one consolidation pass, incremental or `--full`) and `soulcaster
recluster` (hand items back to the clusterer after a model or threshold change)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from services.clusterer.consolidation import Consolidator
    from shared.settings import Settings

log = logging.getLogger(__name__)
ADOPT_LOCK_WAIT_SECONDS = 120.0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    clusterer = commands.add_parser("clusterer", help="run one consumer of the `clusterer` group")
    clusterer.set_defaults(handler=run_clusterer)
    sweep = commands.add_parser("sweep", help="re-enqueue unclustered items that have no pending event")
    sweep.set_defaults(handler=run_sweep)
    consolidate = commands.add_parser(
        "consolidate", help="one consolidation pass over the neighbour graph (what changed since the last)"
    )
    consolidate.add_argument(
        "--full", action="store_true", help="re-detect every cluster, not only the changed"
    )
    consolidate.set_defaults(handler=run_consolidate)
    recluster = commands.add_parser(
        "recluster", help="re-enqueue items for clustering (new model or thresholds)"
    )
    chosen = recluster.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--all", action="store_true", help="every item; rebuilds every cluster")
    chosen.add_argument("--source", help="only the items of this source (reddit, github, ...)")
    recluster.set_defaults(handler=run_recluster)


def run_clusterer(args: argparse.Namespace) -> int:
    from services.clusterer.consolidation import build_consolidator
    from services.clusterer.providers import build_embedder, build_vector_index
    from services.clusterer.worker import build_clusterer_consumers
    from shared.redis_connection import connect
    from shared.settings import get_settings
    from shared.worker_process import serve_worker

    settings = get_settings()
    redis = connect(settings)
    keys = settings.keys()
    embedder = build_embedder(settings)
    index = build_vector_index(settings, redis, keys, embedder)
    consumers = build_clusterer_consumers(settings, redis, keys, embedder, index)
    consolidator = build_consolidator(settings, redis, keys, embedder, index)

    async def serve() -> None:
        await adopt_existing_clusters(settings, redis)
        background = [
            asyncio.create_task(_sweep_periodically(settings.sweep_interval_seconds)),
            asyncio.create_task(_consolidate_when_due(settings, consolidator)),
        ]
        try:
            await serve_worker(settings, redis, consumers)
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    asyncio.run(serve())
    return 0


async def adopt_existing_clusters(settings: Settings, redis: Redis) -> None:
    """Before the first write: clusters from a version without `cluster:of` get their authority."""
    from services.clusterer.cluster_store import ClusterStore
    from services.clusterer.lock import RedisLock

    keys = settings.keys()
    lock = RedisLock(redis, keys.cluster_lock, settings.cluster_lock_ttl_ms)
    async with lock.held(ADOPT_LOCK_WAIT_SECONDS):
        adopted = await ClusterStore(redis, keys, lock.key).adopt_clusters()
    if adopted:
        log.info("filled the cluster authority from existing clusters", extra={"items": adopted})


async def _sweep_periodically(interval_seconds: float) -> None:
    """Jittered so replicas started together do not all sweep in the same instant; its own client,
    because the worker's is closed on shutdown. A failed sweep is logged and retried next time."""
    from services.clusterer.sweeper import Sweeper
    from shared.redis_connection import connect
    from shared.settings import get_settings

    settings = get_settings()
    redis = connect(settings)
    sweeper = Sweeper(redis, settings.keys())
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


async def _consolidate_when_due(settings: Settings, consolidator: Consolidator) -> None:
    """Debounced passes: checked every second, run once new items have been quiet for the debounce
    or have waited the maximum; a full pass every CLUSTER_FULL_PASS_INTERVAL_SECONDS when set. Any
    replica may run one; they serialise on the assignment lock at commit. A failed pass is logged
    and retried at the next check."""
    loop = asyncio.get_running_loop()
    full_interval = settings.cluster_full_pass_interval_seconds
    next_full = loop.time() + full_interval
    while True:
        await asyncio.sleep(random.uniform(0.5, 1.5))
        try:
            if full_interval > 0 and loop.time() >= next_full:
                next_full = loop.time() + full_interval
                await consolidator.run(full=True)
            elif await consolidator.due(
                settings.cluster_pass_debounce_seconds, settings.cluster_pass_max_wait_seconds
            ):
                await consolidator.run()
        except Exception:
            log.exception("consolidation pass failed")


def run_consolidate(args: argparse.Namespace) -> int:
    from services.clusterer.consolidation import build_consolidator, describe
    from shared.redis_connection import connect
    from shared.settings import get_settings

    async def consolidate() -> None:
        settings = get_settings()
        redis = connect(settings)
        try:
            await adopt_existing_clusters(settings, redis)
            results = await build_consolidator(settings, redis, settings.keys()).run(full=args.full)
        finally:
            await redis.aclose()
        print(describe(results))

    asyncio.run(consolidate())
    return 0


def run_sweep(args: argparse.Namespace) -> int:
    from services.clusterer.sweeper import Sweeper
    from shared.redis_connection import connect
    from shared.settings import get_settings

    async def sweep_once() -> None:
        settings = get_settings()
        redis = connect(settings)
        try:
            result = await Sweeper(redis, settings.keys()).sweep()
        finally:
            await redis.aclose()
        print(f"re-enqueued {result.requeued}, dropped {result.dropped} missing items")

    asyncio.run(sweep_once())
    return 0


def run_recluster(args: argparse.Namespace) -> int:
    from services.clusterer.lock import RedisLock
    from services.clusterer.providers import build_embedder, build_vector_index
    from services.clusterer.recluster import Reclusterer
    from shared.redis_connection import connect
    from shared.settings import get_settings

    async def recluster() -> None:
        settings = get_settings()
        redis = connect(settings)
        keys = settings.keys()
        lock = RedisLock(redis, keys.cluster_lock, settings.cluster_lock_ttl_ms)
        try:
            await adopt_existing_clusters(settings, redis)
            if args.all:
                result = await Reclusterer(redis, keys, lock).recluster_all()
            else:
                embedder = build_embedder(settings)
                index = build_vector_index(settings, redis, keys, embedder)
                result = await Reclusterer(redis, keys, lock, embedder, index).recluster_source(args.source)
        finally:
            await redis.aclose()
        print(
            f"re-enqueued {result.requeued} items; deleted {result.clusters_deleted} clusters, "
            f"shrank {result.clusters_shrunk}"
        )

    asyncio.run(recluster())
    return 0
