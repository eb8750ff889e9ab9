"""The API app in process (httpx over ASGI) against the test's real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from redis.asyncio import Redis

from services.api.app import create_app
from shared.settings import Settings


async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app started with `settings` (its lifespan run), for a test that needs its own."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client


@pytest.fixture
async def api(settings: Settings, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(settings):
        yield client
