"""What a stream and its consumer groups look like right now: length, lag, pending, dead letters.

One reading shared by `/stats`, the `soulcaster streams` operator tool and the lag metrics, so they
never disagree about what "lag" means. Lag is NULL in Redis when it cannot be computed (after some
deletions or trims): it is reported as None, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from shared.redis_connection import is_cluster


@dataclass(frozen=True)
class GroupInfo:
    name: str
    consumers: int
    pending: int
    lag: int | None
    last_delivered_id: str
    oldest_pending_id: str | None
    oldest_pending_age_ms: int | None
    """Since the oldest pending entry was appended, by the server's clock."""


@dataclass(frozen=True)
class StreamInfo:
    stream: str
    length: int
    dead_letter_stream: str
    dead_letter_length: int
    groups: tuple[GroupInfo, ...]


async def stream_info(redis: Redis, stream: str, dead_letter_stream: str) -> StreamInfo:
    """Two round trips on one server; three on a cluster, whose pipelines refuse keyless TIME."""
    cluster = is_cluster(redis)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.exists(stream)
        pipe.xlen(stream)
        pipe.xlen(dead_letter_stream)
        if not cluster:
            pipe.time()
        exists, length, dead_letter_length, *clock = await pipe.execute()
    seconds, microseconds = await redis.time() if cluster else clock[0]
    now_ms = int(seconds) * 1000 + int(microseconds) // 1000
    groups = await _groups(redis, stream, now_ms) if exists else ()
    return StreamInfo(stream, int(length), dead_letter_stream, int(dead_letter_length), groups)


async def _groups(redis: Redis, stream: str, now_ms: int) -> tuple[GroupInfo, ...]:
    described: list[dict[str, Any]] = await redis.xinfo_groups(stream)
    async with redis.pipeline(transaction=False) as pipe:
        for group in described:
            pipe.xpending(stream, group["name"])
        summaries: list[dict[str, Any]] = await pipe.execute()
    return tuple(
        _group_info(group, summary, now_ms) for group, summary in zip(described, summaries, strict=True)
    )


def _group_info(group: dict[str, Any], summary: dict[str, Any], now_ms: int) -> GroupInfo:
    oldest: str | None = summary.get("min") or None
    lag = group.get("lag")
    return GroupInfo(
        name=str(group["name"]),
        consumers=int(group["consumers"]),
        pending=int(group["pending"]),
        lag=int(lag) if lag is not None else None,
        last_delivered_id=str(group["last-delivered-id"]),
        oldest_pending_id=oldest,
        oldest_pending_age_ms=max(now_ms - int(oldest.split("-", 1)[0]), 0) if oldest else None,
    )
