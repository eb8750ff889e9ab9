"""The cluster hash layout and the reads both the clusterer and the read API use.

`cluster:{id}` keeps the dashboard's fields (DESIGN.md §2) plus what online clustering needs to
update a cluster without re-reading its members: per-source counts, the running mean `centroid`
(a JSON list; its norm is below 1, so cosine to it divides by its norm) and the item that was most
central when it joined (its title names the cluster). `keywords`, a JSON list of a few terms best
first, labels it beside that title.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel
from redis.asyncio import Redis

from shared.keys import Keys
from shared.models import FeedbackItem

ClusterOrder = Literal["newest", "largest"]


class ClusterField:
    """Fields of a `cluster:{id}` hash."""

    ID = "id"
    TITLE = "title"
    SUMMARY = "summary"
    STATUS = "status"
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"
    SIZE = "size"
    SOURCES = "sources"
    SOURCE_COUNTS = "source_counts"
    CENTROID = "centroid"
    CENTROID_B64 = "centroid_b64"  # the same mean as base64 float32: 20x faster to read than JSON
    CENTRAL_ITEM = "central_item"
    CENTRAL_SCORE = "central_score"
    KEYWORDS = "keywords"  # JSON list, best first (services/clusterer/keywords.py); absent on old clusters


NEW_STATUS = "new"
_VIEW_FIELDS = (
    ClusterField.ID,
    ClusterField.TITLE,
    ClusterField.SUMMARY,
    ClusterField.STATUS,
    ClusterField.CREATED_AT,
    ClusterField.UPDATED_AT,
    ClusterField.SIZE,
    ClusterField.SOURCES,
    ClusterField.SOURCE_COUNTS,
    ClusterField.KEYWORDS,
)


class ClusterView(BaseModel):
    """A cluster as the API shows it: everything but the centroid, which only the clusterer reads.

    `keywords` is empty for a cluster written before keywords existed, until a pass relabels it.
    """

    id: str
    title: str
    summary: str
    status: str
    created_at: datetime
    updated_at: datetime
    size: int
    sources: list[str]
    source_counts: dict[str, int]
    keywords: list[str]

    @classmethod
    def from_fields(cls, values: Sequence[str | None]) -> ClusterView:
        data = dict(zip(_VIEW_FIELDS, values, strict=True))
        return cls(
            id=data[ClusterField.ID] or "",
            title=data[ClusterField.TITLE] or "",
            summary=data[ClusterField.SUMMARY] or "",
            status=data[ClusterField.STATUS] or NEW_STATUS,
            created_at=datetime.fromisoformat(data[ClusterField.CREATED_AT] or ""),
            updated_at=datetime.fromisoformat(data[ClusterField.UPDATED_AT] or ""),
            size=int(data[ClusterField.SIZE] or 0),
            sources=json.loads(data[ClusterField.SOURCES] or "[]"),
            source_counts=json.loads(data[ClusterField.SOURCE_COUNTS] or "{}"),
            keywords=json.loads(data[ClusterField.KEYWORDS] or "[]"),
        )


async def count_clusters(redis: Redis, keys: Keys) -> int:
    return int(await redis.scard(keys.clusters_all))


async def list_cluster_ids(
    redis: Redis, keys: Keys, order: ClusterOrder, offset: int, limit: int
) -> list[str]:
    """Newest first by creation, or largest first by size; both zsets are kept by the clusterer."""
    zset = keys.clusters_by_created if order == "newest" else keys.clusters_by_size
    ids: list[str] = await redis.zrevrange(zset, offset, offset + limit - 1)
    return ids


async def read_clusters(redis: Redis, keys: Keys, cluster_ids: Sequence[str]) -> list[ClusterView]:
    """One round trip; ids whose hash is gone (merged away meanwhile) are left out."""
    async with redis.pipeline(transaction=False) as pipe:
        for cluster_id in cluster_ids:
            pipe.hmget(keys.cluster(cluster_id), list(_VIEW_FIELDS))
        rows: list[list[str | None]] = await pipe.execute()
    return [ClusterView.from_fields(row) for row in rows if row[0] is not None]


async def read_cluster_items(redis: Redis, keys: Keys, cluster_id: str, limit: int) -> list[FeedbackItem]:
    """Up to `limit` members, newest first."""
    member_ids: list[str] = list(await redis.smembers(keys.cluster_items(cluster_id)))
    async with redis.pipeline(transaction=False) as pipe:
        for item_id in member_ids:
            pipe.hgetall(keys.feedback(item_id))
        hashes: list[dict[str, str]] = await pipe.execute()
    items = [FeedbackItem.from_hash(fields) for fields in hashes if fields]
    items.sort(key=lambda item: item.created_at, reverse=True)
    return items[:limit]
