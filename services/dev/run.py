"""The main job on the embedded defaults: API, ingest worker and clusterer in one process.

It starts a local Redis when none answers, feeds the bundled sample of real-shaped feedback from
every source through the HTTP API (as producers would), waits until both consumer groups have
drained, and prints what was stored and the clusters found.

A run holds a lock key under its prefix for as long as it lives (renewed, with a TTL so a crashed
run frees it), because each run starts by clearing its prefix: a second run on the same Redis and
prefix would otherwise wipe the first one's keys while it is serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

import httpx
import uvicorn
from redis.asyncio import Redis

from services.clusterer.lock import LockTimeout, RedisLock
from shared.clusters import ClusterView, list_cluster_ids, read_clusters
from shared.keys import CLUSTERER_GROUP, INGEST_GROUP, Keys
from shared.redis_connection import connect
from shared.settings import Settings
from shared.stream_info import stream_infos

log = logging.getLogger(__name__)

DEV_PREFIX = "dev:"
DRAIN_TIMEOUT_SECONDS = 120
KEYWORDS_SHOWN = 3
KEYWORDS_WIDTH = 36
SOURCES_WIDTH = 30
RUN_LOCK_TTL_MS = 30_000


class DevAlreadyRunning(RuntimeError):
    pass


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the dev process: the process owns SIGTERM and SIGINT, and stops the API the
    same way it stops the workers (uvicorn's own handlers would re-raise SIGTERM and kill it)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass(frozen=True)
class SampleRequest:
    path: str
    body: Any
    headers: dict[str, str]


def load_samples() -> list[SampleRequest]:
    document = json.loads(files("services.dev").joinpath("samples.json").read_text(encoding="utf-8"))
    return [SampleRequest(r["path"], r["body"], r.get("headers", {})) for r in document["requests"]]


def port_or_free(host: str, port: int) -> int:
    """The configured port if it is free, else any free one: a dev run should not fail on a busy 8000."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
            return port
        except OSError:
            sock.bind((host, 0))
            return int(sock.getsockname()[1])


async def clear_prefix(redis: Redis, prefix: str, keep: str) -> int:
    """Remove a previous dev run's keys: only keys under the dev prefix, never anything else, and
    not `keep` (this run's own lock)."""
    removed = 0
    async for key in redis.scan_iter(match=f"{prefix}*", count=1000):
        if key != keep:
            removed += int(await redis.unlink(key))
    return removed


@asynccontextmanager
async def run_lock(redis: Redis, keys: Keys) -> AsyncIterator[None]:
    """This Redis and prefix for this run alone; refuses at once when another run holds them."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(
                RedisLock(redis, keys.dev_run_lock, RUN_LOCK_TTL_MS).held(wait_seconds=0)
            )
        except LockTimeout:
            raise DevAlreadyRunning(
                f"another `soulcaster dev` is running on this Redis under the key prefix '{keys.prefix}' "
                f"(it holds {keys.dev_run_lock}); stop it first, or run beside it with another prefix, "
                f"e.g. SOULCASTER_KEY_PREFIX=dev2:"
            ) from None
        yield


@asynccontextmanager
async def running_services(settings: Settings, keys: Keys) -> AsyncIterator[str]:
    """API on a local port plus an ingest worker and a clusterer (a consumer per partition each);
    yields the API's URL."""
    from services.api.app import create_app
    from services.clusterer.worker import build_clusterer_consumers
    from services.ingest.worker import build_ingest_consumer

    redis = connect(settings)
    consumers = [
        *(build_ingest_consumer(settings, redis, keys.partition(i)) for i in settings.owned_partitions),
        *build_clusterer_consumers(settings, redis, keys),
    ]
    port = port_or_free(settings.api_host, settings.api_port)
    server = EmbeddedServer(
        uvicorn.Config(
            create_app(settings), host=settings.api_host, port=port, log_level="warning", log_config=None
        )
    )
    tasks = [asyncio.create_task(c.run()) for c in consumers] + [asyncio.create_task(server.serve())]
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.05)
    try:
        yield f"http://{settings.api_host}:{port}"
    finally:
        server.should_exit = True
        for consumer in consumers:
            consumer.stop()
        await asyncio.gather(*tasks)
        await redis.aclose()


async def feed(api_url: str, samples: list[SampleRequest], api_key: str) -> Counter[int]:
    """Send every sample as its producer would; returns the count of each HTTP status."""
    statuses: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=10) as client:
        for sample in samples:
            response = await client.post(sample.path, json=sample.body, headers=sample.headers)
            statuses[response.status_code] += 1
    return statuses


async def wait_until_drained(redis: Redis, keys: Keys) -> None:
    """Both groups have read everything and acked it, on every partition (embedding the first batch
    loads the model)."""
    streams = [(s, INGEST_GROUP) for s in keys.ingest_streams]
    streams += [(s, CLUSTERER_GROUP) for s in keys.new_item_streams]
    while True:
        infos = await stream_infos(redis, [(s, keys.dead_letter_stream(s)) for s, _ in streams])
        drained = [
            any(g.name == group and g.lag == 0 and g.pending == 0 for g in info.groups)
            for info, (_, group) in zip(infos, streams, strict=True)
        ]
        if all(drained):
            return
        await asyncio.sleep(0.2)


def cluster_table_header() -> str:
    return f"  {'size':>4}  {'sources':<{SOURCES_WIDTH}} {'keywords':<{KEYWORDS_WIDTH}} title"


def cluster_table_row(cluster: ClusterView) -> str:
    """One line per cluster: the keywords say what its members share, the title how one put it."""
    sources = ", ".join(f"{s} {n}" for s, n in sorted(cluster.source_counts.items()))
    keywords = _clipped(", ".join(cluster.keywords[:KEYWORDS_SHOWN]) or "-", KEYWORDS_WIDTH)
    return (
        f"  {cluster.size:>4}  {sources:<{SOURCES_WIDTH}} {keywords:<{KEYWORDS_WIDTH}} {cluster.title[:60]}"
    )


def _clipped(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


async def consolidate(settings: Settings, redis: Redis, keys: Keys) -> None:
    """The pass a clusterer runs a few seconds after the items stop coming, run now so the table
    shows the clusters a user will see (services/clusterer/consolidation.py)."""
    from services.clusterer.consolidation import build_consolidator

    await build_consolidator(settings, redis, keys).run()


async def report(redis: Redis, keys: Keys) -> str:
    from shared.operations.stream_table import render

    lines = ["", "Stored feedback:"]
    for source in ("reddit", "sentry", "github", "manual"):
        count = sum([await redis.zcard(part.feedback_source(source)) for part in keys.partitions])
        lines.append(f"  {source:<8} {count:>4} items")
    waiting = sum([await redis.scard(part.unclustered) for part in keys.partitions])
    lines.append(f"  waiting for clustering: {waiting}")
    ids = await list_cluster_ids(redis, keys, "largest", 0, 50)
    clusters = await read_clusters(redis, keys, ids)
    lines += ["", f"Clusters ({len(clusters)}), largest first:", cluster_table_header()]
    lines += [cluster_table_row(cluster) for cluster in clusters]
    streams = (*keys.ingest_streams, *keys.new_item_streams)
    infos = await stream_infos(redis, [(s, keys.dead_letter_stream(s)) for s in streams])
    lines += ["", "Streams:", render(infos, {})]
    return "\n".join(lines)


async def poll_reddit_once(settings: Settings, api_url: str, use_reddit: bool) -> str:
    """One poller round into the API: against a local Reddit-shaped server unless asked for reddit.com."""
    from services.poller.reddit.demo import demo_round

    round_report = await demo_round(api_url, use_reddit=use_reddit, settings=settings)
    where = settings.reddit_base_url if use_reddit else "a local Reddit-shaped server"
    return f"Reddit poller (one round against {where}): {round_report.handed_over} posts handed over"


async def run_dev(settings: Settings, fresh: bool, serve: bool, use_reddit: bool = False) -> None:
    keys = settings.keys()
    redis = connect(settings)
    try:
        async with run_lock(redis, keys):
            if fresh:
                removed = await clear_prefix(redis, settings.key_prefix, keep=keys.dev_run_lock)
                print(f"Cleared {removed} keys of an earlier dev run under the prefix '{keys.prefix}'")
            await run_pipeline(settings, keys, redis, serve, use_reddit)
    finally:
        await redis.aclose()


async def run_pipeline(settings: Settings, keys: Keys, redis: Redis, serve: bool, use_reddit: bool) -> None:
    """Start the services, feed the sample, wait for the drain, report; with `serve`, keep going."""
    async with running_services(settings, keys) as api_url:
        print(f"API listening on {api_url} (docs at {api_url}/docs)")
        statuses = await feed(api_url, load_samples(), next(iter(settings.ingest_api_keys), ""))
        print(
            "Sample sent through the API:",
            ", ".join(f"{n} x HTTP {s}" for s, n in sorted(statuses.items())),
        )
        print(await poll_reddit_once(settings, api_url, use_reddit))
        async with asyncio.timeout(DRAIN_TIMEOUT_SECONDS):
            await wait_until_drained(redis, keys)
        await consolidate(settings, redis, keys)
        print(await report(redis, keys))
        if serve:
            print(f"\nServing on {api_url}; Ctrl-C (or SIGTERM) to stop.", flush=True)
            await asyncio.Event().wait()


async def until_signalled(job: Coroutine[object, object, None]) -> bool:
    """Run `job`; SIGTERM or SIGINT cancel it, so its cleanup runs. True when a signal ended it."""
    task = asyncio.ensure_future(job)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False
