"""Delivery guarantees under faults, with real processes: the whole pipeline while things break.

Two ingest workers and two clusterers run on one Redis (AOF, fsync always) while a producer posts
feedback over HTTP. Mid-load one ingest worker and one clusterer are killed with SIGKILL, Redis is
restarted, and the API is restarted. After the load drains, every accepted event produced exactly one
item, every item is in exactly one cluster, nothing waits in `feedback:unclustered`, and the
dead-letter streams hold exactly the deliberately bad events.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis

from services.dev.local_redis import RedisServer, free_port
from shared.keys import Keys
from tests.support.cluster_invariants import assert_each_item_in_one_cluster
from tests.support.drained import drained, run_with_redis
from tests.support.waiting import wait_for

TOPICS = ["export to csv hangs", "login loop on safari", "please add dark mode", "app crashes on start"]


@dataclass
class Process:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "--log-level", "WARNING", *self.args],
                env={**self.env, "CONSUMER_NAME": self.name},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return self

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self) -> int:
        assert self.popen is not None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return int(self.popen.returncode)


@dataclass
class Producer:
    """Posts feedback like a real producer: retries until the API answers 202, remembers what it got."""

    api_url: str
    total: int
    accepted: dict[str, str] = field(default_factory=dict)  # external id -> event id
    stop_at: float = 0.0

    def run(self) -> None:
        with httpx.Client(base_url=self.api_url, timeout=5) as client:
            for n in range(self.total):
                external_id = f"fb-{n % (self.total * 3 // 4)}"  # a quarter are repeats
                body = {
                    "source": "manual",
                    "external_id": external_id,
                    "title": f"{TOPICS[n % len(TOPICS)]} (report {n})",
                    "body": f"{TOPICS[n % len(TOPICS)]}: seen by customer {n}",
                }
                self.accepted[external_id] = self._post(client, body)

    def _post(self, client: httpx.Client, body: dict[str, str]) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                response = client.post("/ingest/feedback", json=body)
                if response.status_code == 202:
                    return str(response.json()["event_id"])
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"the API never accepted {body['external_id']}")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", appendonly=True).start()
    yield server
    server.stop()


def api_ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_every_accepted_event_is_one_item_in_one_cluster_despite_kills_and_restarts(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    keys = Keys()
    api_port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_server.url,
        "EMBEDDER": "hashing",
        "HEALTH_PORT": "0",
        "READ_BLOCK_MS": "200",
        "VISIBILITY_TIMEOUT_MS": "1500",
        "MAX_BACKOFF_MS": "3000",
        "RECLAIM_INTERVAL_MS": "300",
        "MAX_DELIVERIES": "20",
        "INGEST_BATCH_SIZE": "50",
        "CLUSTERER_BATCH_SIZE": "16",
    }
    logs = tmp_path / "logs"
    logs.mkdir()

    def process(name: str, *args: str) -> Process:
        return Process(name, list(args), env, logs / f"{name}.log")

    api = process("api", "api", "--port", str(api_port)).start()
    ingest = [process(f"ingest-{i}", "ingest-worker").start() for i in range(2)]
    clusterers = [process(f"clusterer-{i}", "clusterer").start() for i in range(2)]
    wait_for(lambda: api_ready(api_port), "the API", 30)

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    bad_ids = [
        client.xadd(keys.ingest_stream, {"v": "1", "source": "manual", "payload": "{truncated"}),
        client.xadd(keys.ingest_stream, {"v": "1", "source": "fax", "payload": "{}"}),
    ]
    producer = Producer(f"http://127.0.0.1:{api_port}", total=800)
    load = threading.Thread(target=producer.run)
    load.start()

    wait_for(lambda: len(producer.accepted) > 150, "the load to start", 60)
    ingest[0].kill()
    clusterers[0].kill()
    replacement = process("ingest-2", "ingest-worker").start()
    wait_for(lambda: len(producer.accepted) > 350, "more load", 60)
    redis_server.restart()
    wait_for(lambda: len(producer.accepted) > 500, "load after the Redis restart", 60)
    api.stop()
    api = process("api-2", "api", "--port", str(api_port)).start()
    load.join(120)
    assert not load.is_alive()

    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    wait_for(
        lambda: run_with_redis(redis_server.url, lambda r: drained(r, keys, through_ingest=True)),
        "both groups to drain",
        120,
    )

    # Every accepted event produced exactly one item (repeats of an external id are one item).
    item_ids = set(client.zrange(keys.feedback_created, 0, -1))
    assert len(item_ids) == len(producer.accepted)
    stored_external = {client.hget(keys.feedback(i), "external_id") for i in item_ids}
    assert stored_external == set(producer.accepted)
    outcomes = [
        json.loads(client.hget(keys.event_outcomes(e), e))["status"] for e in producer.accepted.values()
    ]
    assert set(outcomes) <= {"created", "duplicate"}
    assert client.xlen(keys.new_item_stream) == len(item_ids), "each item announced once"

    # Every item is in exactly one cluster, and the cluster keys agree with the items.
    run_with_redis(redis_server.url, lambda r: assert_each_item_in_one_cluster(r, keys, sorted(item_ids)))

    # Dead letters hold exactly the deliberately bad events.
    dead = [fields["original_id"] for _, fields in client.xrange(keys.ingest_dlq)]
    assert sorted(dead) == sorted(bad_ids)
    assert client.xlen(keys.new_item_dlq) == 0

    for worker in [*ingest[1:], replacement, *clusterers[1:]]:
        assert worker.stop() == 0, (logs / f"{worker.name}.log").read_text()[-3000:]
    # uvicorn shuts down gracefully, then re-raises the signal it caught, as a process should.
    assert api.stop() in (0, -signal.SIGTERM)
    client.close()
