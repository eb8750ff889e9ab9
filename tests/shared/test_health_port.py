"""A busy health port: one clear line when it was set explicitly, a free port (logged) when defaulted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from shared.health_server import LIVENESS_PATH
from shared.settings import Settings


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def worker(command: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("command", ["ingest-worker", "janitor"])
def test_an_explicit_busy_health_port_stops_the_process_with_one_line(
    command: str, busy_port: int, redis_url: str
) -> None:
    env = {**os.environ, "REDIS_URL": redis_url, "HEALTH_PORT": str(busy_port)}
    process = worker(command, env)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 1
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"error: HEALTH_PORT {busy_port} is already in use on 0.0.0.0; "
        "free it or set HEALTH_PORT to another port"
    )


def test_a_busy_default_health_port_gives_way_to_a_free_one_and_says_which(redis_url: str) -> None:
    """Two workers on one host, both on the default port: the second one serves elsewhere."""
    default_port = Settings.model_fields["health_port"].default
    with contextlib.ExitStack() as stack:
        holder = stack.enter_context(socket.socket())
        with contextlib.suppress(OSError):  # already busy (another process holds it): the same case
            holder.bind(("0.0.0.0", default_port))
            holder.listen()
        env = {k: v for k, v in os.environ.items() if k != "HEALTH_PORT"}
        process = worker("ingest-worker", {**env, "REDIS_URL": redis_url})
        stack.callback(process.wait, 30)
        stack.callback(process.send_signal, signal.SIGTERM)
        assert process.stderr is not None
        port = None
        for line in process.stderr:
            record = json.loads(line)
            if "port" in record and "is busy" in record["msg"]:
                port = record["port"]
                break
        assert port is not None and port != default_port
        live = httpx.get(f"http://127.0.0.1:{port}{LIVENESS_PATH}", timeout=5)
        assert live.status_code == 200
