"""Which subreddits the poller reads, and "poll now": the operator's side of the Reddit poller.

The list lives under `config:reddit:subreddits` (a JSON list, the dashboard's key). Reading it falls
back to this process's `REDDIT_SUBREDDITS` / `REDDIT_SUBREDDIT`, so a fresh deployment configured
only by environment shows what the poller will do. A trigger is a stream entry that one poller
replica picks up through `GET /producer-requests/poller` (see routes_producer_requests).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from services.api.acceptance import problem
from services.api.auth import require_admin_key
from services.api.errors import error_responses
from services.api.request_body import StrictJsonRoute
from services.api.resources import Resources, request_id
from services.api.routes_producer_requests import append_producer_request
from shared.keys import PollRequestField
from shared.subreddit_names import InvalidSubreddits, normalize_subreddits, subreddits_from_env

router = APIRouter(tags=["reddit"], route_class=StrictJsonRoute, responses=error_responses(422, 503))
ADMIN_ONLY = error_responses(400, 401, 403)


class SubredditList(BaseModel):
    subreddits: list[str]


class SubredditConfig(SubredditList):
    source: Literal["stored", "env", "none"]


class PollRequested(BaseModel):
    request_id: str
    subreddits: list[str]


def _validated(names: list[str]) -> list[str]:
    try:
        return normalize_subreddits(names)
    except InvalidSubreddits as error:
        raise RequestValidationError([problem(("body", "subreddits"), str(error))]) from error


async def stored_subreddits(resources: Resources) -> list[str]:
    raw = await resources.redis.get(resources.keys.reddit_subreddits)
    try:
        return normalize_subreddits(json.loads(raw)) if raw else []
    except (ValueError, TypeError):
        return []


@router.get("/config/reddit/subreddits")
async def get_subreddits(resources: Resources) -> SubredditConfig:
    if stored := await stored_subreddits(resources):
        return SubredditConfig(subreddits=stored, source="stored")
    from_env = subreddits_from_env(resources.settings)
    return SubredditConfig(subreddits=from_env, source="env" if from_env else "none")


@router.put("/config/reddit/subreddits", dependencies=[Depends(require_admin_key)], responses=ADMIN_ONLY)
async def put_subreddits(body: SubredditList, resources: Resources) -> SubredditConfig:
    subreddits = _validated(body.subreddits)
    await resources.redis.set(resources.keys.reddit_subreddits, json.dumps(subreddits))
    return SubredditConfig(subreddits=subreddits, source="stored")


@router.post(
    "/admin/trigger-poll",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(require_admin_key)],
    responses=ADMIN_ONLY,
)
async def trigger_poll(
    request: Request, resources: Resources, body: Annotated[SubredditList | None, Body()] = None
) -> PollRequested:
    """Without a body every configured subreddit is polled; with one, just those."""
    subreddits = _validated(body.subreddits) if body else []
    fields = {
        PollRequestField.SUBREDDITS: json.dumps(subreddits),
        PollRequestField.REQUESTED_AT: datetime.now(UTC).isoformat(),
        PollRequestField.REQUEST_ID: request_id(request),
    }
    entry_id = await append_producer_request(resources, resources.keys.poll_requests_stream, fields)
    return PollRequested(request_id=entry_id, subreddits=subreddits)
