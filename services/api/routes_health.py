"""Probes and metrics: `/healthz` (the process answers), `/readyz` (Redis answers), `/metrics`."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.exceptions import RedisError

from services.api.resources import app_resources
from shared.metrics import unclustered_items

router = APIRouter(tags=["operations"])
READINESS_TIMEOUT_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    try:
        await asyncio.wait_for(app_resources(request).redis.ping(), READINESS_TIMEOUT_SECONDS)
    except (RedisError, OSError, TimeoutError) as error:
        return JSONResponse(
            {"status": "unavailable", "reason": f"redis: {type(error).__name__}"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return JSONResponse({"status": "ready"})


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    """Also samples the unclustered backlog here: one O(1) SCARD per scrape, whatever else runs."""
    resources = app_resources(request)
    with contextlib.suppress(RedisError, OSError):
        unclustered_items.set(int(await resources.redis.scard(resources.keys.unclustered)))
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
