"""Operator requests to producers, served to them over HTTP because producers never touch Redis.

An admin route appends a request ("poll now", "sync this repository") to the producer kind's request
stream with `append_producer_request`. Each running producer long-polls
`GET /producer-requests/{producer}?consumer=<its name>`: the API reads the stream with one consumer
group per producer kind, so each request goes to exactly one replica, and the replica acks it
(`POST .../ack`) after acting on it. A request held by a replica that died unacked is handed to
whichever replica asks next once it has been idle for `REDELIVER_AFTER_MS` (longer than any round),
so it is served late rather than twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from services.api.auth import require_api_key
from services.api.entry_ids import EntryId
from services.api.errors import error_responses
from services.api.request_body import StrictJsonRoute
from services.api.resources import AppResources, Resources
from shared.consumer import ensure_group
from shared.keys import GITHUB_SYNC_GROUP, POLLER_GROUP, Keys

router = APIRouter(
    tags=["producers"],
    dependencies=[Depends(require_api_key)],
    route_class=StrictJsonRoute,
    responses=error_responses(400, 401, 404, 422, 503),
)

MAX_WAIT_SECONDS = 20.0  # below the Redis client's socket timeout, so a blocked read never trips it
MAX_REQUESTS = 10
REDELIVER_AFTER_MS = 15 * 60_000
REQUESTS_KEPT = 10_000  # per request stream, approximately: operators' clicks, not data
CONSUMER_NAME = r"^[A-Za-z0-9._:@-]{1,128}$"


class ProducerRequestEntry(BaseModel):
    id: str
    fields: dict[str, str]


class ProducerRequestBatch(BaseModel):
    requests: list[ProducerRequestEntry]


class AckBody(BaseModel):
    ids: list[EntryId] = Field(max_length=1000)


class AckReceipt(BaseModel):
    acked: int


async def append_producer_request(resources: AppResources, stream: str, fields: Mapping[str, str]) -> str:
    """How every admin trigger is sent; the entry id is the request id the operator gets back."""
    entry_id = await resources.redis.xadd(stream, dict(fields), maxlen=REQUESTS_KEPT, approximate=True)
    return str(entry_id)


def request_stream(keys: Keys, producer: str) -> str:
    """The request stream of a producer kind; its consumer group is named after the kind."""
    streams = {POLLER_GROUP: keys.poll_requests_stream, GITHUB_SYNC_GROUP: keys.github_sync_requests_stream}
    if producer not in streams:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"unknown producer {producer!r}; known: {sorted(streams)}"
        )
    return streams[producer]


def _entries(reply: object) -> list[ProducerRequestEntry]:
    """XAUTOCLAIM's and XREADGROUP's entry lists; an entry trimmed away while pending comes back empty."""
    return [
        ProducerRequestEntry(id=entry_id, fields=fields)
        for entry_id, fields in reply or []  # type: ignore[attr-defined]
        if fields is not None
    ]


@router.get("/producer-requests/{producer}")
async def next_requests(
    resources: Resources,
    producer: Annotated[str, Path()],
    consumer: Annotated[str, Query(pattern=CONSUMER_NAME)],
    wait_seconds: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0.0,
) -> ProducerRequestBatch:
    """Requests abandoned by a dead replica first, else new ones, waiting up to `wait_seconds` for one."""
    redis = resources.redis
    stream = request_stream(resources.keys, producer)
    await ensure_group(redis, stream, producer)
    claimed = await redis.xautoclaim(
        stream, producer, consumer, REDELIVER_AFTER_MS, "0-0", count=MAX_REQUESTS
    )
    if entries := _entries(claimed[1]):
        return ProducerRequestBatch(requests=entries)
    block_ms = int(wait_seconds * 1000)
    reply = await redis.xreadgroup(
        producer, consumer, {stream: ">"}, count=MAX_REQUESTS, block=block_ms if block_ms > 0 else None
    )
    return ProducerRequestBatch(
        requests=[entry for _, messages in reply or [] for entry in _entries(messages)]
    )


@router.post("/producer-requests/{producer}/ack")
async def ack_requests(body: AckBody, resources: Resources, producer: Annotated[str, Path()]) -> AckReceipt:
    stream = request_stream(resources.keys, producer)
    acked = await resources.redis.xack(stream, producer, *body.ids) if body.ids else 0
    return AckReceipt(acked=int(acked))
