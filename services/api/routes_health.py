"""Probes and metrics: `/healthz` (the process answers), `/readyz` (Redis answers), `/metrics`."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Literal

from fastapi import APIRouter, Response, status
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from redis.exceptions import RedisError

from services.api.resources import Resources
from shared.metrics import unclustered_items

router = APIRouter(tags=["operations"])
READINESS_TIMEOUT_SECONDS = 2.0


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    reason: str | None = None


NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {"model": Readiness, "description": "Redis did not answer PING in time."}
}


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses=NOT_READY)
async def readyz(resources: Resources) -> JSONResponse:
    try:
        await asyncio.wait_for(resources.redis.ping(), READINESS_TIMEOUT_SECONDS)
    except (RedisError, OSError, TimeoutError) as error:
        return JSONResponse(
            {"status": "unavailable", "reason": f"redis: {type(error).__name__}"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return JSONResponse({"status": "ready"})


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(resources: Resources) -> Response:
    """Also samples the unclustered backlog here: one O(1) SCARD per partition per scrape, summed, in
    one pipeline (one round trip per master), whatever else runs."""
    with contextlib.suppress(RedisError, OSError):
        async with resources.redis.pipeline(transaction=False) as pipe:
            for part in resources.keys.partitions:
                pipe.scard(part.unclustered)
            unclustered_items.set(sum(map(int, await pipe.execute())))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
