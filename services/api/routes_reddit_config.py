"""Which subreddits the poller reads, and "poll now": the operator's side of the Reddit poller.

The list lives under `config:reddit:subreddits` (a JSON list, the dashboard's key). Reading it falls
back to this process's `REDDIT_SUBREDDITS` / `REDDIT_SUBREDDIT`, so a fresh deployment configured
only by environment shows what the poller will do. A trigger is a stream entry that one poller
replica picks up through `GET /producer-requests/poller` (see routes_producer_requests).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, status
from pydantic import BaseModel
from redis.asyncio import Redis

from services.api.bearer_keys import require_admin_key, settings_of
from services.api.routes_producer_requests import app_keys, app_redis, append_producer_request
from shared.keys import Keys, PollRequestField
from shared.settings import Settings
from shared.subreddit_names import InvalidSubreddits, normalize_subreddits, subreddits_from_env

router = APIRouter(tags=["reddit"])


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
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from error


async def stored_subreddits(redis: Redis, keys: Keys) -> list[str]:
    raw = await redis.get(keys.reddit_subreddits)
    try:
        return normalize_subreddits(json.loads(raw)) if raw else []
    except (ValueError, TypeError):
        return []


@router.get("/config/reddit/subreddits")
async def get_subreddits(
    redis: Annotated[Redis, Depends(app_redis)],
    keys: Annotated[Keys, Depends(app_keys)],
    settings: Annotated[Settings, Depends(settings_of)],
) -> SubredditConfig:
    if stored := await stored_subreddits(redis, keys):
        return SubredditConfig(subreddits=stored, source="stored")
    from_env = subreddits_from_env(settings)
    return SubredditConfig(subreddits=from_env, source="env" if from_env else "none")


@router.put("/config/reddit/subreddits", dependencies=[Depends(require_admin_key)])
async def put_subreddits(
    body: SubredditList,
    redis: Annotated[Redis, Depends(app_redis)],
    keys: Annotated[Keys, Depends(app_keys)],
) -> SubredditConfig:
    subreddits = _validated(body.subreddits)
    await redis.set(keys.reddit_subreddits, json.dumps(subreddits))
    return SubredditConfig(subreddits=subreddits, source="stored")


@router.post(
    "/admin/trigger-poll",
    status_code=status.HTTP_202_ACCEPTED,
    dependencies=[Depends(require_admin_key)],
)
async def trigger_poll(
    redis: Annotated[Redis, Depends(app_redis)],
    keys: Annotated[Keys, Depends(app_keys)],
    body: Annotated[SubredditList | None, Body()] = None,
) -> PollRequested:
    """Without a body every configured subreddit is polled; with one, just those."""
    subreddits = _validated(body.subreddits) if body else []
    entry_id = await append_producer_request(
        redis,
        keys.poll_requests_stream,
        {
            PollRequestField.SUBREDDITS: json.dumps(subreddits),
            PollRequestField.REQUESTED_AT: datetime.now(UTC).isoformat(),
            PollRequestField.REQUEST_ID: uuid.uuid4().hex,
        },
    )
    return PollRequested(request_id=entry_id, subreddits=subreddits)
