"""`soulcaster dev` as a process: SIGTERM stops it as cleanly as Ctrl-C, the Redis it started never
outlives it, and a second run on the same Redis and prefix refuses instead of wiping the first."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from services.dev.local_redis import free_port
from shared.keys import CLUSTERER_GROUP, INGEST_GROUP, Keys

DEV_KEYS = Keys("dev:")


def dev_env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SOULCASTER_KEY_PREFIX", "KEY_PREFIX")}
    return {
        **env,
        "REDIS_URL": redis_url,
        "API_PORT": str(free_port()),
        "EMBEDDER": "hashing",  # the lifecycle is under test here, not the model
        "PYTHONUNBUFFERED": "1",
    }


def start_dev(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "--log-level", "WARNING", "dev", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_serving(process: subprocess.Popen[str]) -> list[str]:
    """The lines printed up to "Serving on ...": the run has fed the sample and drained."""
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith("Serving on"):
            return lines
    raise AssertionError(f"dev ended before serving: {''.join(lines)}{process.stderr.read()}")  # type: ignore[union-attr]


def answers(port: int) -> bool:
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
    finally:
        client.close()


def test_sigterm_stops_dev_serve_cleanly_and_stops_the_redis_it_started(tmp_path: Path) -> None:
    port = free_port()
    process = start_dev(dev_env(f"redis://127.0.0.1:{port}/0"), "--serve", "--data-dir", str(tmp_path))
    try:
        wait_until_serving(process)
        assert answers(port)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err[-2000:]
    assert "Stopped: the API and workers shut down cleanly" in out
    assert "Traceback" not in err
    assert not answers(port), "the Redis dev started must stop with it"


def test_the_redis_dev_started_dies_with_it_even_when_dev_is_killed(tmp_path: Path) -> None:
    port = free_port()
    process = start_dev(dev_env(f"redis://127.0.0.1:{port}/0"), "--serve", "--data-dir", str(tmp_path))
    try:
        wait_until_serving(process)
        process.kill()
        process.wait(30)
    finally:
        process.kill()
    client = redis.Redis(port=port, socket_connect_timeout=0.5)
    try:
        for _ in range(100):  # the kernel signals it at once; it exits after flushing its file
            try:
                client.ping()
            except redis.ConnectionError:
                return
            time.sleep(0.1)
        raise AssertionError("redis-server outlived the dev process that started it")
    finally:
        client.close()


def test_an_error_in_dev_still_stops_the_redis_it_started(tmp_path: Path) -> None:
    port = free_port()
    env = {**dev_env(f"redis://127.0.0.1:{port}/0"), "API_HOST": "256.0.0.1"}  # cannot be bound
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "dev", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert f"Started a local Redis at redis://127.0.0.1:{port}/0" in result.stdout
    assert not answers(port)


def test_a_second_dev_on_the_same_redis_refuses_and_leaves_the_first_ones_keys(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    first = start_dev(dev_env(redis_url), "--serve")
    try:
        printed = "".join(wait_until_serving(first))
        assert f"Using the Redis already running at {redis_url}" in printed
        assert "Keys go under the prefix 'dev:' (operator commands: SOULCASTER_KEY_PREFIX=dev:)" in printed
        items = client.zcard(DEV_KEYS.feedback_created)
        assert items > 0

        second = subprocess.run(
            [sys.executable, "-m", "services.cli", "dev"],
            env=dev_env(redis_url),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 1
        assert "error: another `soulcaster dev` is running on this Redis under the key prefix 'dev:'" in (
            second.stderr
        )
        assert "Traceback" not in second.stderr
        assert client.zcard(DEV_KEYS.feedback_created) == items, "the running dev's keys are untouched"

        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=60)
        assert first.returncode == 0, err[-2000:]
    finally:
        first.kill()
    assert "The run's keys stay in Redis at" in out and "(that Redis keeps running)" in out
    assert not client.exists(DEV_KEYS.dev_run_lock), "a stopped run frees the Redis for the next one"
    groups = ((DEV_KEYS.ingest_stream, INGEST_GROUP), (DEV_KEYS.new_item_stream, CLUSTERER_GROUP))
    for stream, group in groups:
        assert client.xpending(stream, group)["pending"] == 0, "the workers finished what they took"
    client.close()
