"""Removing consumers that are gone, without ever orphaning their pending entries.

Kubernetes pods come and go with new names, and every name stays in the group forever. Deleting a
consumer that still owns pending entries makes them unclaimable, so the check and the delete run as
one script: a consumer is removed only if it owns nothing at that instant.
"""

from __future__ import annotations

from redis.asyncio import Redis

_DELETE_IF_IDLE = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


async def prune_idle_consumers(redis: Redis, stream: str, group: str, idle_ms: int) -> list[str]:
    """Names removed: idle longer than `idle_ms` and owning no pending entry."""
    delete_if_idle = redis.register_script(_DELETE_IF_IDLE)
    removed: list[str] = []
    for consumer in await redis.xinfo_consumers(stream, group):
        if int(consumer["idle"]) < idle_ms or int(consumer["pending"]) > 0:
            continue
        if await delete_if_idle(keys=[stream], args=[group, consumer["name"]]):
            removed.append(consumer["name"])
    return removed
