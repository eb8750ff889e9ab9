"""A redis-server process on this machine: for `soulcaster dev` when none answers, and for tests and benches.

The one launcher in the repository, so dev runs, tests and benches start Redis the same way: bound
to loopback, snapshots off, eviction off (a full Redis refuses writes instead of dropping stream
entries), and with the append-only file on, every write fsynced, so a killed server restarts with
every acknowledged write. `soulcaster dev` keeps its data folder, so a second run sees the first
run's items; tests give each server a throwaway folder.

A server started here never outlives its starter: `redis_for_dev` stops it however the block ends,
and (on Linux) the kernel sends it SIGTERM if the starting process itself is killed outright.
"""

from __future__ import annotations

import contextlib
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import redis

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
START_TIMEOUT_SECONDS = 10.0
PR_SET_PDEATHSIG = 1


class LocalRedisError(RuntimeError):
    """No redis-server could be started: not installed, not a loopback URL, or it exited at once."""


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it), for servers started on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reachable(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()


class RedisServer:
    """One redis-server; `restart()` keeps its port and data folder (the AOF survives when enabled)."""

    def __init__(self, data_dir: Path, *, appendonly: bool = False, port: int | None = None) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            raise LocalRedisError(
                "redis-server is not installed: run `make setup` (or apt-get install redis-server)"
            )
        self.executable = executable
        self.data_dir = data_dir
        self.appendonly = appendonly
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def for_url(cls, url: str, data_dir: Path) -> RedisServer:
        """The server `url` names, persistent; only a loopback URL can be started here."""
        parts = urlsplit(url)
        if parts.hostname not in LOOPBACK:
            raise LocalRedisError(f"Redis at {url} is unreachable, and only a loopback Redis is started here")
        return cls(data_dir, appendonly=True, port=parts.port or 6379)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._process = subprocess.Popen(
            self._command(), stdout=subprocess.DEVNULL, preexec_fn=stop_with_parent()
        )
        self._wait_until_ready()
        return self

    def stop(self, kill: bool = False) -> None:
        """`kill` is SIGKILL, a crash: nothing is flushed beyond what each write already fsynced."""
        if self._process is None:
            return
        if kill:
            self._process.kill()
        else:
            self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _command(self) -> list[str]:
        return [
            self.executable,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "always",
            "--maxmemory-policy",
            "noeviction",
            "--dir",
            str(self.data_dir),
            "--loglevel",
            "warning",
        ]

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not reachable(self.url):
            if self._process is not None and self._process.poll() is not None:
                self._process = None
                raise LocalRedisError(f"redis-server exited at once on port {self.port}")
            if time.monotonic() > deadline:
                self.stop(kill=True)
                raise LocalRedisError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.02)


@contextlib.contextmanager
def redis_for_dev(url: str, data_dir: Path) -> Iterator[bool]:
    """Yields whether a local Redis was started for `url`; one started here stops when the block ends."""
    if reachable(url):
        yield False
        return
    server = RedisServer.for_url(url, data_dir).start()
    try:
        yield True
    finally:
        server.stop()


def stop_with_parent() -> Callable[[], None] | None:
    """Linux: the child gets SIGTERM when its parent dies, so not even a SIGKILLed starter orphans it."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    return lambda: libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
