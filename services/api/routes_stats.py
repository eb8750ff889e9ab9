"""`GET /stats`: items per source, the unclustered backlog, and each stream's groups and dead letters."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends

from services.api.auth import require_api_key
from services.api.errors import error_responses
from services.api.resources import AppResources, Resources
from shared.models import KNOWN_SOURCES
from shared.stream_info import stream_info

router = APIRouter(
    tags=["read"], dependencies=[Depends(require_api_key)], responses=error_responses(401, 503)
)


async def sources_present(resources: AppResources) -> list[str]:
    """The known sources plus any other the ingest worker has stored items of (`/ingest/feedback`),
    read from the set it keeps, so a dashboard refresh never scans the keyspace."""
    found = set(await resources.redis.smembers(resources.keys.feedback_sources))
    return [*KNOWN_SOURCES, *sorted(found - set(KNOWN_SOURCES))]


@router.get("/stats")
async def stats(resources: Resources) -> dict[str, Any]:
    redis, keys = resources.redis, resources.keys
    sources = await sources_present(resources)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zcard(keys.feedback_created)
        pipe.scard(keys.unclustered)
        pipe.scard(keys.clusters_all)
        for source in sources:
            pipe.zcard(keys.feedback_source(source))
        total, unclustered, clusters, *counts = await pipe.execute()
    streams = [
        await stream_info(redis, stream, keys.dead_letter_stream(stream))
        for stream in (keys.ingest_stream, keys.new_item_stream)
    ]
    return {
        "feedback": {
            "total": int(total),
            "unclustered": int(unclustered),
            "by_source": dict(zip(sources, map(int, counts), strict=True)),
        },
        "clusters": {"total": int(clusters)},
        "streams": [asdict(info) for info in streams],
    }
