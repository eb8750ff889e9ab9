"""A Redis for `soulcaster dev` when none answers at the configured URL.

Started only for a loopback URL, with its data (append-only file) kept in a local folder so a second
run sees the first run's items, and stopped when the dev run ends, however it ends: on the way out
of `redis_for_dev`, and (on Linux) by the kernel if the dev process itself is killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import redis

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
STOP_TIMEOUT_SECONDS = 10
PR_SET_PDEATHSIG = 1


class LocalRedisError(RuntimeError):
    pass


def reachable(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()


def start_local_redis(url: str, data_dir: Path) -> subprocess.Popen[bytes]:
    """Start redis-server for a loopback `url`; the caller terminates the returned process."""
    parts = urlsplit(url)
    if parts.hostname not in LOOPBACK:
        raise LocalRedisError(f"Redis at {url} is unreachable, and only a loopback Redis is started here")
    executable = shutil.which("redis-server")
    if executable is None:
        raise LocalRedisError(
            "redis-server is not installed: run `make setup` (or apt-get install redis-server)"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    command = [
        executable,
        "--port",
        str(parts.port or 6379),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data_dir),
        "--appendonly",
        "yes",
        "--save",
        "",
        "--maxmemory-policy",
        "noeviction",
        "--loglevel",
        "warning",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, preexec_fn=_stop_with_parent())
    deadline = time.monotonic() + 10
    while not reachable(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise LocalRedisError(f"redis-server did not start on {url}")
        time.sleep(0.05)
    return process


@contextlib.contextmanager
def redis_for_dev(url: str, data_dir: Path) -> Iterator[bool]:
    """Yields whether a local Redis was started; one started here is stopped when the block ends."""
    if reachable(url):
        yield False
        return
    process = start_local_redis(url, data_dir)
    try:
        yield True
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (redis-server flushes its append-only file), then SIGKILL if it does not exit."""
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _stop_with_parent() -> Callable[[], None] | None:
    """Linux: the child gets SIGTERM when its parent dies, so not even a SIGKILLed dev orphans it."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    return lambda: libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
