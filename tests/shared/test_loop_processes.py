"""Loop processes (the producers, the janitor) serve liveness and metrics, and stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from services.dev.local_redis import free_port


@pytest.mark.slow
@pytest.mark.parametrize(
    "command",
    [["poller", "--subreddit", "python"], ["github-sync", "--repo", "a/b"], ["github-sync"], ["janitor"]],
)
def test_loop_mode_serves_health_and_exits_on_sigterm(command: list[str], redis_url: str) -> None:
    health_port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "HEALTH_PORT": str(health_port),
        "INGEST_API_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens: rounds keep failing
        "REDDIT_BASE_URL": f"http://127.0.0.1:{free_port()}",
        "GITHUB_API_URL": f"http://127.0.0.1:{free_port()}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "--log-level", "ERROR", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                live = httpx.get(f"http://127.0.0.1:{health_port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "no health endpoint"
                time.sleep(0.1)
        assert live.status_code == 200
        assert "heartbeat" in live.text
        assert httpx.get(f"http://127.0.0.1:{health_port}/metrics", timeout=2).status_code == 200
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
