"""The life of a producer in loop mode: a round every interval, operator requests served in between.

Between rounds the producer long-polls the API for requests, so "poll now" is served within one API
round trip instead of at the next interval. When the API cannot be reached the wait goes on with
short pauses; the next round starts on time regardless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import httpx

from services.poller.producer.ingest_client import IngestApiRejected
from services.poller.producer.requests_client import ProducerRequest, ProducerRequests
from shared.loop_process import LoopHeartbeat
from shared.retry_policy import RemoteUnavailableError

log = logging.getLogger(__name__)

MAX_LONG_POLL_SECONDS = 20.0
PRODUCER_STALE_SECONDS = 900.0
"""A round with retries and backoff can take minutes; one that makes no progress for this long is stuck."""
UNREACHABLE_PAUSE_SECONDS = 5.0


async def run_rounds(
    run_round: Callable[[], Awaitable[object]],
    serve: Callable[[ProducerRequest], Awaitable[object]],
    requests: ProducerRequests,
    interval_seconds: float,
    heartbeat: LoopHeartbeat,
) -> None:
    """Runs until cancelled; cancelling mid-round loses nothing (the next start resends what was unsent)."""
    while True:
        heartbeat.beat()
        await run_round()
        next_round = time.monotonic() + interval_seconds
        while (remaining := next_round - time.monotonic()) > 0:
            heartbeat.beat()
            await serve_requests(serve, requests, min(remaining, MAX_LONG_POLL_SECONDS))


async def serve_requests(
    serve: Callable[[ProducerRequest], Awaitable[object]], requests: ProducerRequests, wait_seconds: float
) -> int:
    """Serves whatever requests arrive within `wait_seconds` and acks them; returns how many."""
    try:
        batch = await requests.next(wait_seconds)
        for request in batch:
            log.info("request received", extra={"request": request.id, "fields": request.fields})
            await serve(request)
        await requests.ack([request.id for request in batch])
    except (IngestApiRejected, RemoteUnavailableError, httpx.HTTPError) as error:
        log.warning("cannot reach producer requests on the API", extra={"error": repr(error)})
        await asyncio.sleep(min(wait_seconds, UNREACHABLE_PAUSE_SECONDS))
        return 0
    return len(batch)
