"""`GET /stats`: items per source, the unclustered backlog, and each stream's groups and dead letters."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends

from services.api.auth import require_api_key
from services.api.errors import error_responses
from services.api.resources import AppResources, Resources
from shared.models import KNOWN_SOURCES
from shared.stream_info import stream_infos

router = APIRouter(
    tags=["read"], dependencies=[Depends(require_api_key)], responses=error_responses(401, 503)
)


async def sources_present(resources: AppResources) -> list[str]:
    """The known sources plus any other the ingest worker has stored items of (`/ingest/feedback`),
    read from the set it keeps in each partition, so a dashboard refresh never scans the keyspace."""
    async with resources.redis.pipeline(transaction=False) as pipe:
        for part in resources.keys.partitions:
            pipe.smembers(part.feedback_sources)
        found: set[str] = set().union(*await pipe.execute())
    return [*KNOWN_SOURCES, *sorted(found - set(KNOWN_SOURCES))]


@router.get("/stats")
async def stats(resources: Resources) -> dict[str, Any]:
    """Five round trips whatever the partition count (six on a cluster): the sources, every count of
    every partition in one pipeline (2 + sources commands per partition, summed), and the readings of
    every partition's streams in three (`stream_infos`)."""
    redis, keys = resources.redis, resources.keys
    sources = await sources_present(resources)
    partitions = keys.partitions
    async with redis.pipeline(transaction=False) as pipe:
        pipe.scard(keys.clusters_all)
        for part in partitions:
            pipe.zcard(part.feedback_created)
            pipe.scard(part.unclustered)
            for source in sources:
                pipe.zcard(part.feedback_source(source))
        clusters, *counts = map(int, await pipe.execute())
    width = 2 + len(sources)
    summed = [sum(counts[column::width]) for column in range(width)]
    total, unclustered, *by_source = summed
    names = (*keys.ingest_streams, *keys.new_item_streams)
    streams = await stream_infos(redis, [(stream, keys.dead_letter_stream(stream)) for stream in names])
    return {
        "feedback": {
            "total": total,
            "unclustered": unclustered,
            "by_source": dict(zip(sources, by_source, strict=True)),
        },
        "clusters": {"total": clusters},
        "streams": [asdict(info) for info in streams],
    }
