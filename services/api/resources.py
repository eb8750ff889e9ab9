"""What every route needs from the running app, created once by the lifespan."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from redis.asyncio import Redis

from shared.keys import Keys
from shared.publisher import IngestPublisher
from shared.settings import Settings


@dataclass(frozen=True)
class AppResources:
    settings: Settings
    keys: Keys
    redis: Redis
    publisher: IngestPublisher


def app_resources(request: Request) -> AppResources:
    resources: AppResources = request.app.state.resources
    return resources


def request_id(request: Request) -> str:
    """Set by `RequestIdMiddleware` for every request."""
    return str(getattr(request.state, "request_id", ""))


Resources = Annotated[AppResources, Depends(app_resources)]
"""How a route reaches the app's settings, keys, Redis client and publisher: `resources: Resources`.
Only request-level plumbing that FastAPI calls with the request (auth dependencies, the body
parser, the acceptance helpers) uses `app_resources(request)` itself."""
