"""Ingest on Redis Cluster with 1, 2 and 3 masters, beside single-node Redis measured in the same run.

Every setup runs the production worker, `soulcaster ingest-worker` processes (`build_ingest_consumer`,
one consumer per partition, every process consuming every partition):
- drain: a pre-filled backlog is drained; events/s from the first to the last new-item entry
  (server times). The workers start idle (their groups sit at the stream's end) and the groups are
  moved to the start once every worker reads, so neither Python's start-up nor the backlog's
  publishing falls in the drain. Over the drain, each redis-server's CPU (INFO cpu, used_cpu_sys +
  used_cpu_user) is divided by the events its partitions hold, and the workers' CPU (/proc) by all;
- latency: a publisher offers a fixed rate to idle workers; per event, the new-item entry's id time
  minus the ingest entry's id time (both stamped by a Redis server, whole milliseconds);
- projection, a core per shard: a shard saturates its core at 1 / (its CPU per event) of its own
  events, so the cluster saturates when its busiest shard does: min over shards of that divided by
  the shard's share of the events. The workers scale by adding processes, so the projection says
  how many worker cores it needs: projected events/s x worker CPU per event.

Single node is today's default (one partition, historic key names); `single, 6 parts` is one
redis-server with 6 partitions, what partitions change without cluster mode. The clusters use 6
partitions, a multiple of every master count, so each master holds as many. Repetitions are
interleaved (each visits every setup, in a rotated order) and medians are printed. Figures and
their reading: docs/benchmarks.md.

    nice .venv/bin/python -m bench.cluster_ingest [--events 30000] [--workers 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from bench.ingest_worker import workload
from bench.sustained_pipeline import entry_ms, start_workers, stop
from services.dev.local_cluster import LocalRedisCluster
from services.dev.local_redis import RedisServer
from services.ingest.routing import routed
from shared.keys import INGEST_GROUP, Keys, NewItemField
from shared.publisher import IngestPublisher, RawEvent
from shared.redis_connection import connect
from shared.settings import Settings

PARTITIONS = 6
POLL_SECONDS = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Target:
    """One setup's Redis for the whole run: its settings, and a plain client on every redis-server."""

    name: str
    settings: Settings
    shards: list[redis.Redis]
    shard_index: Callable[[str], int]
    stop: Callable[[], None]
    failed_starts: int = 0

    @property
    def partitions(self) -> tuple[Keys, ...]:
        return self.settings.keys().partitions

    def shard(self, key: str) -> redis.Redis:
        return self.shards[self.shard_index(key)]

    def worker_env(self) -> dict[str, str]:
        return {
            "REDIS_CLUSTER": "true" if self.settings.redis_cluster else "false",
            "INGEST_PARTITIONS": str(self.settings.ingest_partitions),
        }

    def flush(self) -> None:
        for shard in self.shards:
            shard.flushall()

    def redis_cpu(self) -> list[float]:
        """Seconds of CPU each redis-server has used (all its threads)."""
        return [float(info["used_cpu_sys"]) + float(info["used_cpu_user"]) for info in self._cpu_infos()]

    def _cpu_infos(self) -> Iterator[dict[str, str]]:
        for shard in self.shards:
            yield shard.info("cpu")

    def version(self) -> str:
        return str(self.shards[0].info("server")["redis_version"])


def single_node(folder: Path, partitions: int = 1) -> Target:
    """Today's default with one partition; with more, their tagged streams on the one server."""
    server = RedisServer(folder).start()
    settings = Settings(redis_url=server.url, ingest_partitions=partitions)
    client = redis.Redis.from_url(server.url, decode_responses=True)
    name = "single node" if partitions == 1 else f"single, {partitions} parts"
    return Target(name, settings, [client], lambda _: 0, server.stop)


def cluster(folder: Path, masters: int) -> Target:
    local = LocalRedisCluster(folder, masters=masters).start()
    settings = Settings(redis_cluster=True, ingest_partitions=PARTITIONS, redis_url=local.url)
    ports = [node.port for node in local.nodes]

    def shard_index(key: str) -> int:
        return ports.index(local.node_for(key).port)

    clients = [node.client() for node in local.nodes]
    return Target(cluster_name(masters), settings, clients, shard_index, local.stop)


def routed_workload(count: int) -> list[RawEvent]:
    """bench.ingest_worker's events, each with the item id it is routed by (the API's trial
    normalization, done here before any clock starts)."""
    return [routed(event) for event in workload(count)]


class Appender:
    """Appends through the publisher every producer uses (`IngestPublisher.publish_many`): on a
    cluster one script call per partition's share, on one server one MULTI."""

    def __init__(self, client: Redis, keys: Keys) -> None:
        self._publisher = IngestPublisher(client, keys, producer="bench")

    async def append(self, events: Sequence[RawEvent]) -> None:
        await self._publisher.publish_many(events)


async def prefill(target: Target, events: Sequence[RawEvent]) -> None:
    client = connect(target.settings)
    appender = Appender(client, target.settings.keys())
    try:
        for start in range(0, len(events), 1000):
            await appender.append(events[start : start + 1000])
    finally:
        await client.aclose()


async def offer(target: Target, events: Sequence[RawEvent], rate: float) -> float:
    """`rate` events per second in slices of 10 ms; returns the rate achieved."""
    client = connect(target.settings)
    appender = Appender(client, target.settings.keys())
    slice_size = max(int(rate / 100), 1)
    started = time.perf_counter()
    try:
        for sent in range(0, len(events), slice_size):
            await appender.append(events[sent : sent + slice_size])
            ahead = (sent + slice_size) / rate - (time.perf_counter() - started)
            if ahead > 0:
                await asyncio.sleep(ahead)
    finally:
        await client.aclose()
    return len(events) / (time.perf_counter() - started)


def consumers_reading(target: Target) -> int:
    """How many workers read every partition: the fewest consumers any partition's group has."""
    counts = []
    for keys in target.partitions:
        stream = keys.ingest_stream
        try:
            counts.append(len(target.shard(stream).xinfo_consumers(stream, INGEST_GROUP)))
        except ResponseError:  # no worker has created the group yet
            return 0
    return min(counts)


def wait_until(ready: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} took over {timeout} s")
        time.sleep(POLL_SECONDS)


def drained(target: Target, expected: int) -> bool:
    written = sum(target.shard(k.new_item_stream).xlen(k.new_item_stream) for k in target.partitions)
    return written >= expected and not any(
        target.shard(k.ingest_stream).xpending(k.ingest_stream, INGEST_GROUP)["pending"]
        for k in target.partitions
    )


def check(target: Target, expected: int) -> None:
    """Every event made one item, announced once; nothing was dead-lettered."""
    created = sum(target.shard(k.feedback_created).zcard(k.feedback_created) for k in target.partitions)
    written = sum(target.shard(k.new_item_stream).xlen(k.new_item_stream) for k in target.partitions)
    dead = sum(target.shard(k.ingest_dlq).xlen(k.ingest_dlq) for k in target.partitions)
    assert (created, written, dead) == (expected, expected, 0), f"wrong end state {(created, written, dead)}"


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) a process has used, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclass
class Drain:
    rate: float
    redis_us: list[float]  # CPU per event, per shard
    shares: list[float]  # of the events, per shard
    worker_us: float  # CPU per event, all workers together

    @property
    def ceiling(self) -> float:
        """Events/s with a core per shard: a shard saturates at 1e6 / its us per event of its own
        events, which are its share of all, so the cluster saturates with its first shard."""
        return min(1e6 / us / share for us, share in zip(self.redis_us, self.shares, strict=True))


class Workers:
    """Running `soulcaster ingest-worker` processes; a wait on them fails as soon as one has exited."""

    def __init__(self, target: Target, count: int, logs: Path) -> None:
        self.logs = logs
        self.processes = start_workers(target.settings.redis_url, count, logs, target.worker_env())

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes]

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = 120) -> None:
        def running_and_ready() -> bool:
            for index, process in enumerate(self.processes):
                if process.poll() is not None:
                    log = (self.logs / f"worker-{index}.log").read_text()[-3000:]
                    raise RuntimeError(
                        f"worker {index} exited with {process.returncode} during {what}:\n{log}"
                    )
            return ready()

        wait_until(running_and_ready, what, timeout)


START_ATTEMPTS = 3
START_TIMEOUT_SECONDS = 30.0


def reading_workers(target: Target, count: int, logs: Path) -> Workers:
    """`count` workers reading every partition; started again when one dies or hangs at start.

    On a cluster a worker sometimes does (docs/benchmarks.md): each such start is printed and
    counted in `target.failed_starts`, never hidden. Nothing is consumed before every worker reads
    (the drain's groups sit at the stream's end, the latency's streams are empty), so a retry
    measures the same thing."""
    for attempt in range(1, START_ATTEMPTS + 1):
        folder = logs / f"start-{attempt}"
        folder.mkdir(parents=True)
        workers = Workers(target, count, folder)
        try:
            workers.wait_until(
                lambda: consumers_reading(target) >= count, "the workers' start", START_TIMEOUT_SECONDS
            )
            return workers
        except (RuntimeError, TimeoutError) as exc:
            stop(workers.processes)
            target.failed_starts += 1
            print(f"  {target.name}: worker start {attempt} failed: {str(exc).splitlines()[0]}", flush=True)
            if attempt == START_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def workers_on(target: Target, count: int, logs: Path) -> Iterator[Workers]:
    workers = reading_workers(target, count, logs)
    try:
        yield workers
    finally:
        stop(workers.processes)


def drain(target: Target, events: int, workers: int, folder: Path) -> Drain:
    target.flush()
    asyncio.run(prefill(target, routed_workload(events)))
    streams = [keys.ingest_stream for keys in target.partitions]
    for stream in streams:
        target.shard(stream).xgroup_create(stream, INGEST_GROUP, id="$")
    with workers_on(target, workers, folder) as running:
        redis_before, workers_before = target.redis_cpu(), sum(map(process_cpu, running.pids))
        for stream in streams:
            target.shard(stream).xgroup_setid(stream, INGEST_GROUP, id="0")
        running.wait_until(lambda: drained(target, events), "the drain")
        redis_after, workers_after = target.redis_cpu(), sum(map(process_cpu, running.pids))
    check(target, events)
    handled = [0] * len(target.shards)
    for stream in streams:
        handled[target.shard_index(stream)] += target.shard(stream).xlen(stream)
    redis_us = [1e6 * (a - b) / n for a, b, n in zip(redis_after, redis_before, handled, strict=True)]
    shares = [n / events for n in handled]
    worker_us = 1e6 * (workers_after - workers_before) / events
    return Drain(events / drain_seconds(target), redis_us, shares, worker_us)


def drain_seconds(target: Target) -> float:
    """From the first to the last new-item entry of any partition (server times)."""
    firsts, lasts = [], []
    for keys in target.partitions:
        stream = keys.new_item_stream
        shard = target.shard(stream)
        firsts.append(entry_ms(shard.xrange(stream, count=1)[0][0]))
        lasts.append(entry_ms(shard.xrevrange(stream, count=1)[0][0]))
    return max((max(lasts) - min(firsts)) / 1000, 1e-3)


@dataclass
class Latency:
    offered: float
    p50: float
    p99: float


def latency(target: Target, rate: float, seconds: float, workers: int, folder: Path) -> Latency:
    count = int(rate * seconds)
    target.flush()
    with workers_on(target, workers, folder) as running:
        offered = asyncio.run(offer(target, routed_workload(count), rate))
        running.wait_until(lambda: drained(target, count), "the offered events")
    values = sorted(
        entry_ms(entry_id) - entry_ms(fields[NewItemField.EVENT_ID])
        for keys in target.partitions
        for entry_id, fields in target.shard(keys.new_item_stream).xrange(keys.new_item_stream)
    )
    return Latency(offered, statistics.median(values), values[math.ceil(0.99 * len(values)) - 1])


@dataclass
class Figures:
    drains: list[Drain] = field(default_factory=list)
    latencies: list[Latency] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(d.rate for d in self.drains)

    @property
    def redis_us(self) -> list[float]:
        return [statistics.median(shard) for shard in zip(*(d.redis_us for d in self.drains), strict=True)]

    @property
    def worker_us(self) -> float:
        return statistics.median(d.worker_us for d in self.drains)

    @property
    def ceiling(self) -> float:
        return statistics.median(d.ceiling for d in self.drains)


def header(target: Target, args: argparse.Namespace) -> str:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{now}  {os.cpu_count()} cores, load average {load}  redis-server {target.version()}  "
        f"{args.events:,} events per drain, {args.workers} worker processes (each consuming every "
        f"partition), {PARTITIONS} partitions on clusters; latency at {args.rate:,.0f} events/s for "
        f"{args.seconds:g} s; medians of {args.runs} interleaved runs"
    )


def latency_columns(latencies: Sequence[Latency]) -> tuple[str, str, str]:
    """Offered events/s, p50 and p99 (medians over the runs), or dashes where none was measured."""
    if not latencies:
        return "-", "-", "-"
    offered = statistics.median(v.offered for v in latencies)
    p50, p99 = statistics.median(v.p50 for v in latencies), statistics.median(v.p99 for v in latencies)
    return f"{offered:,.0f}", f"{p50:.0f}", f"{p99:.0f}"


def table(targets: Sequence[Target], figures: dict[str, Figures], events: int) -> list[str]:
    """`x single`: the median over runs of the setup's rate over single node's in the same run."""
    single = figures[targets[0].name].drains
    lines = [
        f"{'setup':<19} {'events':>7} {'events/s':>9} {'runs (events/s)':<24} {'x single':>8} "
        f"{'offered':>8} {'p50 ms':>6} {'p99 ms':>6}  {'Redis us/event per shard':<24} "
        f"{'worker us/ev':>12} {'proj. ev/s':>10} {'worker cores':>12}",
        "-" * 161,
    ]
    for target in targets:
        got = figures[target.name]
        runs = ", ".join(f"{d.rate:,.0f}" for d in got.drains)
        ratio = statistics.median(d.rate / s.rate for d, s in zip(got.drains, single, strict=True))
        offered, p50, p99 = latency_columns(got.latencies)
        shards = " / ".join(f"{us:.1f}" for us in got.redis_us)
        cores = got.ceiling * got.worker_us / 1e6
        lines.append(
            f"{target.name:<19} {events:>7,} {got.rate:>9,.0f} {runs:<24} {ratio:>8.2f} "
            f"{offered:>8} {p50:>6} {p99:>6}  {shards:<24} {got.worker_us:>12.1f} "
            f"{got.ceiling:>10,.0f} {cores:>12.1f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=30_000, help="backlog per drain")
    parser.add_argument("--workers", type=int, default=2, help="ingest-worker processes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--masters", type=int, nargs="*", default=[1, 2, 3])
    parser.add_argument("--rate", type=float, default=2_000, help="offered events/s for latency")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument(
        "--partitioned-single",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"also one redis-server with {PARTITIONS} partitions: what partitions alone change",
    )
    parser.add_argument("--latency-masters", type=int, default=3, help="the cluster measured for latency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        targets = [single_node(root / "single")]
        try:
            if args.partitioned_single:
                targets.append(single_node(root / "single-partitioned", PARTITIONS))
            targets += [cluster(root / f"cluster-{m}", m) for m in args.masters]
            print(header(targets[0], args), flush=True)
            figures = measure(targets, args, root)
        finally:
            for target in targets:
                target.stop()
    print("\n".join(table(targets, figures, args.events)))
    failed = ", ".join(f"{t.name} {t.failed_starts}" for t in targets if t.failed_starts)
    print(f"worker starts that failed (a worker died or hung) and were retried: {failed or 'none'}")


def measure(targets: Sequence[Target], args: argparse.Namespace, root: Path) -> dict[str, Figures]:
    """Each run visits every setup, starting one setup later than the run before, so no setup
    always follows the same one (the machine's load drifts within a run)."""
    figures = {target.name: Figures() for target in targets}
    latency_names = {targets[0].name, cluster_name(args.latency_masters)}
    for run in range(args.runs):
        start = run % len(targets)
        for index, target in enumerate([*targets[start:], *targets[:start]]):
            logs = root / f"logs-{run}-{index}"
            logs.mkdir()
            got = drain(target, args.events, args.workers, logs / "drain")
            figures[target.name].drains.append(got)
            print(f"  run {run + 1} {target.name}: drain {got.rate:,.0f} events/s", flush=True)
            if target.name in latency_names:
                measured = latency(target, args.rate, args.seconds, args.workers, logs / "latency")
                figures[target.name].latencies.append(measured)
                print(f"  run {run + 1} {target.name}: p50 {measured.p50:.0f} ms, p99 {measured.p99:.0f} ms")
    return figures


def cluster_name(masters: int) -> str:
    return f"cluster, {masters} master{'s' if masters > 1 else ''}"


if __name__ == "__main__":
    main()
