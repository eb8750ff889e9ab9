"""The ingest API application: one Redis client and one publisher per process, routers listed below."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from services.api import (
    routes_clusters,
    routes_events,
    routes_feedback,
    routes_github_config,
    routes_health,
    routes_ingest,
    routes_producer_requests,
    routes_reddit_config,
    routes_stats,
    routes_webhooks,
)
from services.api.errors import install_error_handlers
from services.api.openapi_document import openapi_builder
from services.api.request_id import RequestIdMiddleware
from services.api.request_metrics import RequestMetricsMiddleware
from services.api.resources import AppResources
from shared.publisher import IngestPublisher
from shared.redis_connection import connect, learn_slot_map
from shared.settings import Settings, get_settings

# One line per router module; add yours here.
ROUTERS: list[APIRouter] = [
    routes_ingest.router,
    routes_webhooks.router,
    routes_events.router,
    routes_feedback.router,
    routes_stats.router,
    routes_health.router,
    routes_reddit_config.router,
    routes_producer_requests.router,
    routes_github_config.router,
    routes_clusters.router,
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = connect(settings)
        await learn_slot_map(redis)
        keys = settings.keys()
        app.state.resources = AppResources(
            settings, keys, redis, IngestPublisher(redis, keys, producer="api")
        )
        try:
            yield
        finally:
            await redis.aclose()

    app = FastAPI(title="Soulcaster ingest API", lifespan=lifespan)
    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    app.openapi = openapi_builder(app)  # type: ignore[method-assign]
    app.add_middleware(RequestMetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app
