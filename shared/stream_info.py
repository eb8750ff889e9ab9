"""What a stream and its consumer groups look like right now: length, lag, pending, dead letters.

One reading shared by `/stats`, the `soulcaster streams` operator tool and the lag metrics, so they
never disagree about what "lag" means. Lag is NULL in Redis when it cannot be computed (after some
deletions or trims): it is reported as None, never guessed.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    [info] = await stream_infos(redis, [(stream, dead_letter_stream)])
    return info


async def stream_infos(redis: Redis, streams: Sequence[tuple[str, str]]) -> list[StreamInfo]:
    """Several (stream, dead-letter stream) readings in three pipelines whatever their number (every
    partition's streams at the cost of one): lengths and the clock, groups, pending summaries. On a
    cluster a fourth round trip asks the time, as its pipelines refuse the keyless TIME."""
    cluster = is_cluster(redis)
    async with redis.pipeline(transaction=False) as pipe:
        for stream, dead_letter_stream in streams:
            pipe.exists(stream)
            pipe.xlen(stream)
            pipe.xlen(dead_letter_stream)
        if not cluster:
            pipe.time()
        replies = await pipe.execute()
    seconds, microseconds = await redis.time() if cluster else replies.pop()
    now_ms = int(seconds) * 1000 + int(microseconds) // 1000
    existing = [stream for (stream, _), exists in zip(streams, replies[::3], strict=True) if exists]
    groups = await _groups(redis, existing, now_ms)
    return [
        StreamInfo(stream, int(length), dead_letter_stream, int(dead_length), groups.get(stream, ()))
        for (stream, dead_letter_stream), length, dead_length in zip(
            streams, replies[1::3], replies[2::3], strict=True
        )
    ]


async def _groups(redis: Redis, streams: Sequence[str], now_ms: int) -> dict[str, tuple[GroupInfo, ...]]:
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xinfo_groups(stream)
        described: list[list[dict[str, Any]]] = await pipe.execute()
    async with redis.pipeline(transaction=False) as pipe:
        for stream, groups in zip(streams, described, strict=True):
            for group in groups:
                pipe.xpending(stream, group["name"])
        summaries: list[dict[str, Any]] = await pipe.execute()
    found: dict[str, tuple[GroupInfo, ...]] = {}
    position = 0
    for stream, groups in zip(streams, described, strict=True):
        found[stream] = tuple(
            _group_info(group, summary, now_ms)
            for group, summary in zip(groups, summaries[position : position + len(groups)], strict=True)
        )
        position += len(groups)
    return found


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
