"""`soulcaster dev`, the README's first command, as a user runs it: a real process, nothing running."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import redis

from tests.support.redis_server import free_port


def test_dev_starts_its_own_redis_feeds_the_sample_and_prints_clusters(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{port}/0", "API_PORT": str(free_port())}
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "--log-level", "WARNING", "dev", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert f"Started a local Redis at redis://127.0.0.1:{port}/0" in out
    assert "13 x HTTP 202" in out
    assert "Reddit poller (one round against a local Reddit-shaped server): 25 posts handed over" in out
    for source in ("reddit", "sentry", "github", "manual"):
        assert f"{source:<8}" in out
    assert "waiting for clustering: 0" in out
    assert "Clusters (" in out and "Clusters (0)" not in out
    assert (tmp_path / "appendonlydir").exists(), "the local Redis keeps its data in the given folder"
    # The local Redis was stopped with the run.
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    try:
        client.ping()
        raise AssertionError("the local Redis should be stopped")
    except redis.ConnectionError:
        pass
    finally:
        client.close()
