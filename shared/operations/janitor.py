"""Retention: trim streams without ever dropping an entry a group still needs.

Before Redis 8.2 trimming ignores consumer groups, so a plain `MAXLEN` can evict pending and even
undelivered entries. The janitor computes what is safe instead:
- nothing at or after the oldest entry some group has not been delivered yet;
- nothing newer than the replay window;
- below that bound, entries still pending in any group survive: the stream is trimmed by MINID up to
  the oldest pending entry, and acked entries between pending ones are deleted one by one.
On 8.2+ the server's own acked-only trimming (`XTRIM ... ACKED`) does the last two steps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis

log = logging.getLogger(__name__)

PAGE = 1000
ACKED_TRIM_SINCE = (8, 2)


@dataclass(frozen=True)
class TrimReport:
    stream: str
    bound: str
    trimmed: int
    deleted: int
    kept_pending: int


def successor(entry_id: str) -> str:
    """The smallest id after `entry_id`: the first entry a group has not been delivered."""
    ms, seq = entry_id.split("-")
    return f"{ms}-{int(seq) + 1}"


def id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class Janitor:
    def __init__(self, redis: Redis, replay_window_seconds: float) -> None:
        self._redis = redis
        self._window_ms = int(replay_window_seconds * 1000)
        self._acked_trim: bool | None = None

    async def trim(self, stream: str, now_ms: int | None = None) -> TrimReport:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if not await self._redis.exists(stream):
            return TrimReport(stream, "0-0", 0, 0, 0)
        groups = await self._redis.xinfo_groups(stream)
        bound = self._bound(groups, now_ms)
        if await self._server_trims_acked_only():
            trimmed = await self._redis.execute_command("XTRIM", stream, "MINID", bound, "ACKED")
            return TrimReport(stream, bound, int(trimmed), 0, -1)
        pending = await self._pending_below(stream, [g["name"] for g in groups], bound)
        oldest_pending = min(pending, key=id_key) if pending else bound
        trimmed = int(await self._redis.xtrim(stream, minid=oldest_pending, approximate=False))
        deleted = await self._delete_acked_between(stream, oldest_pending, bound, pending) if pending else 0
        report = TrimReport(stream, bound, trimmed, deleted, len(pending))
        log.info("trimmed stream", extra=vars(report))
        return report

    def _bound(self, groups: list[dict[str, object]], now_ms: int) -> str:
        """Exclusive upper limit of what may go: the window's start, or the oldest undelivered entry."""
        candidates = [f"{now_ms - self._window_ms}-0"]
        candidates += [successor(str(g["last-delivered-id"])) for g in groups]
        return min(candidates, key=id_key)

    async def _pending_below(self, stream: str, groups: list[str], bound: str) -> set[str]:
        found: set[str] = set()
        for group in groups:
            start = "-"
            while True:
                page = await self._redis.xpending_range(stream, group, min=start, max=f"({bound}", count=PAGE)
                found.update(entry["message_id"] for entry in page)
                if len(page) < PAGE:
                    break
                start = "(" + page[-1]["message_id"]
        return found

    async def _delete_acked_between(self, stream: str, start: str, bound: str, pending: set[str]) -> int:
        deleted = 0
        cursor = start
        while True:
            page = await self._redis.xrange(stream, min=cursor, max=f"({bound}", count=PAGE)
            acked = [entry_id for entry_id, _ in page if entry_id not in pending]
            if acked:
                deleted += int(await self._redis.xdel(stream, *acked))
            if len(page) < PAGE:
                return deleted
            cursor = "(" + page[-1][0]

    async def _server_trims_acked_only(self) -> bool:
        """Redis 8.2 added `XTRIM ... ACKED`; the server's version tells, asked once."""
        if self._acked_trim is None:
            version = str((await self._redis.info("server")).get("redis_version", "0"))
            self._acked_trim = tuple(int(part) for part in version.split(".")[:2]) >= ACKED_TRIM_SINCE
        return self._acked_trim
