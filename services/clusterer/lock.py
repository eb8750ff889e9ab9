"""The assignment lock: one clusterer at a time decides cluster membership for an index.

A random owner token makes release and renewal compare-and-act (Lua), so a holder whose lock
expired can never delete or extend the next holder's lock. The TTL bounds how long a crashed holder
blocks the others; a live holder renews it in the background. Writes made under the lock also check
the token inside their own script (a fence), because a paused holder may wake up after expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from collections.abc import AsyncIterator

from redis.asyncio import Redis

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
POLL_SECONDS = 0.02


class LockTimeout(Exception):
    """The lock stayed taken longer than the caller was willing to wait."""


class RedisLock:
    def __init__(self, redis: Redis, key: str, ttl_ms: int) -> None:
        self._redis = redis
        self.key = key
        self._ttl_ms = ttl_ms
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)

    async def acquire(self, wait_seconds: float) -> str:
        """Returns the owner token; polls with jitter so waiting replicas do not move in lockstep."""
        token = secrets.token_hex(16)
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while not await self._redis.set(self.key, token, nx=True, px=self._ttl_ms):
            if asyncio.get_running_loop().time() >= deadline:
                raise LockTimeout(f"{self.key} still held after {wait_seconds:g}s")
            await asyncio.sleep(POLL_SECONDS * (1 + random.random()))
        return token

    async def release(self, token: str) -> bool:
        """True when this token still held the lock; False means it had expired meanwhile."""
        return bool(await self._release(keys=[self.key], args=[token]))

    async def renew(self, token: str) -> bool:
        return bool(await self._renew(keys=[self.key], args=[token, self._ttl_ms]))

    @contextlib.asynccontextmanager
    async def held(self, wait_seconds: float) -> AsyncIterator[str]:
        """Hold the lock for a block, renewing it every third of the TTL until the block ends."""
        token = await self.acquire(wait_seconds)
        keeper = asyncio.create_task(self._keep(token))
        try:
            yield token
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await self.release(token)

    async def _keep(self, token: str) -> None:
        """Stops at the first failed renewal: the lock is lost and the fence will refuse the write."""
        renewed = True
        while renewed:
            await asyncio.sleep(self._ttl_ms / 3000)
            renewed = await self.renew(token)
