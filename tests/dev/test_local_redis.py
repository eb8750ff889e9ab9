"""The one redis-server launcher: what `soulcaster dev`, the tests and the benches all start Redis with."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from services.dev.local_redis import LocalRedisError, RedisServer, free_port, reachable


def test_only_a_loopback_url_is_started(tmp_path: Path) -> None:
    with pytest.raises(LocalRedisError, match="only a loopback Redis"):
        RedisServer.for_url("redis://redis.example.com:6379/0", tmp_path)


def test_a_dev_server_keeps_every_acknowledged_write_through_a_kill(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    server = RedisServer.for_url(url, tmp_path).start()
    try:
        client = redis.Redis.from_url(url)
        client.set("written", "before the crash")
        client.close()
        server.stop(kill=True)
        assert not reachable(url)
        server.start()
        client = redis.Redis.from_url(url)
        assert client.get("written") == b"before the crash"
        client.close()
    finally:
        server.stop()
