"""Stream ranges given by operators: an entry id, a bare millisecond time, or an ISO-8601 time."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from redis.asyncio import Redis

_ENTRY_ID = re.compile(r"^\d+(-\d+)?$")


def to_stream_id(value: str) -> str:
    """`-` and `+` pass through; `1700000000000-5` and `1700000000000` are ids; else ISO time."""
    if value in ("-", "+") or _ENTRY_ID.match(value):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(
            f"{value!r} is neither a stream id, a millisecond time nor an ISO-8601 time"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return str(int(moment.timestamp() * 1000))


async def entries_between(
    redis: Redis, stream: str, start: str = "-", end: str = "+", page: int = 1000
) -> AsyncIterator[tuple[str, dict[str, str]]]:
    """Every entry in [start, end], paged so a long range never loads at once."""
    cursor = to_stream_id(start)
    end = to_stream_id(end)
    while True:
        entries = await redis.xrange(stream, min=cursor, max=end, count=page)
        for entry in entries:
            yield entry
        if len(entries) < page:
            return
        cursor = "(" + entries[-1][0]
