"""The rows of a `/feedback` page, newest first, read from every partition's index and merged.

With several partitions each holds its own `feedback:created` (and `feedback:source:{s}`) index.
The order is (score desc, id desc) across all of them, so the `<score>:<id>` cursor names one place
in that order whatever the partition count: each partition contributes its rows strictly after the
cursor, and the first `limit` of the merge are the page. Every index is read in one pipeline (on a
cluster, one round trip per master, in parallel); a page costs at most N x `limit` rows read.

An `offset` needs the first `offset + limit` rows of every partition, so with several partitions it
is bounded (`MAX_MERGED_OFFSET`): past it the cursor is the way on. With one partition it reads
exactly its page, as it always has.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Row = tuple[str, float]
MAX_MERGED_OFFSET = 10_000


async def newest_rows(
    redis: Any, indexes: Sequence[str], limit: int, cursor: Row | None = None, offset: int = 0
) -> tuple[list[Row], int]:
    """The page's rows and the total over every index: one pipeline."""
    async with redis.pipeline(transaction=False) as pipe:
        for key in indexes:
            pipe.zcard(key)
            if cursor is None:
                first = offset if len(indexes) == 1 else 0
                pipe.zrevrange(key, first, offset + limit - 1, withscores=True)
            else:
                _, score = cursor
                pipe.zrevrangebyscore(key, repr(score), repr(score), withscores=True)
                pipe.zrevrangebyscore(key, f"({score!r}", "-inf", start=0, num=limit, withscores=True)
        replies = await pipe.execute()
    step = 2 if cursor is None else 3
    total = sum(int(replies[i]) for i in range(0, len(replies), step))
    if cursor is None:
        rows = merged([replies[i + 1] for i in range(0, len(replies), step)])
        return (rows if len(indexes) == 1 else rows[offset:])[:limit], total
    member, _ = cursor
    after: list[list[Row]] = []
    for i in range(0, len(replies), step):
        ties, below = replies[i + 1], replies[i + 2]
        after.append([row for row in ties if row[0] < member] + below)
    return merged(after)[:limit], total


def merged(partitions: Sequence[list[Row]]) -> list[Row]:
    """One list in (score desc, id desc) order, Redis's ZREVRANGE order within one index."""
    if len(partitions) == 1:
        return [(str(member), float(score)) for member, score in partitions[0]]
    rows = [(str(member), float(score)) for rows in partitions for member, score in rows]
    return sorted(rows, key=lambda row: (row[1], row[0]), reverse=True)
