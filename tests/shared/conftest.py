"""Fixtures of the operator-command tests, which run `soulcaster` as a real process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis as sync_redis


@pytest.fixture
def client(redis_url: str) -> Iterator[sync_redis.Redis]:
    """A synchronous client on the emptied test database: the commands under test run in their own
    process, so the test only writes their input and reads their effects."""
    connection = sync_redis.Redis.from_url(redis_url, decode_responses=True)
    connection.flushdb()
    yield connection
    connection.close()
