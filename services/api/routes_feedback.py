"""Read API for the dashboard: feedback items newest first, and one item by id.

Pages follow `feedback:created` (or `feedback:source:{source}`) in reverse score order, every
partition's merged (`feedback_rows`). A cursor is the score and id of the last item shown, so items
arriving meanwhile never shift a page; `offset` is there for simple clients that accept that shift.
"""

from __future__ import annotations

import logging
import math

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from services.api.acceptance import problem
from services.api.auth import require_api_key
from services.api.errors import error_responses
from services.api.feedback_rows import MAX_MERGED_OFFSET, Row, newest_rows
from services.api.paging import Limit, Offset
from services.api.resources import Resources
from shared.models import SOURCE_PATTERN, FeedbackItem

log = logging.getLogger(__name__)
router = APIRouter(
    tags=["read"], dependencies=[Depends(require_api_key)], responses=error_responses(401, 422, 503)
)
CURSOR_FORM = "a cursor is the `next_cursor` of the previous page: `<score>:<id>`"


class FeedbackPage(BaseModel):
    items: list[FeedbackItem]
    total: int
    next_cursor: str | None


def encode_cursor(row: Row) -> str:
    member, score = row
    return f"{score!r}:{member}"


def decode_cursor(cursor: str) -> Row:
    """A finite score and an id; anything else is the caller's 422, never a command Redis refuses."""
    score, separator, member = cursor.partition(":")
    try:
        value = float(score)
    except ValueError:
        value = math.nan
    if not separator or not math.isfinite(value):
        raise RequestValidationError([problem(("query", "cursor"), CURSOR_FORM)])
    return member, value


@router.get("/feedback", response_model=FeedbackPage, responses=error_responses(400))
async def list_feedback(
    resources: Resources,
    limit: Limit = 50,
    cursor: str | None = None,
    offset: Offset | None = None,
    source: str | None = Query(None, pattern=SOURCE_PATTERN),
) -> FeedbackPage:
    """Two round trips: every partition's index in one pipeline, then the page's hashes in one."""
    if cursor is not None and offset is not None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "use either cursor or offset, not both")
    redis, keys = resources.redis, resources.keys
    partitions = keys.partitions
    if len(partitions) > 1 and (offset or 0) > MAX_MERGED_OFFSET:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"offset over {MAX_MERGED_OFFSET} with {len(partitions)} partitions: page with the cursor",
        )
    indexes = [part.feedback_source(source) if source else part.feedback_created for part in partitions]
    position = decode_cursor(cursor) if cursor is not None else None
    rows, total = await newest_rows(redis, indexes, limit, position, offset or 0)
    async with redis.pipeline(transaction=False) as pipe:
        for member, _ in rows:
            pipe.hgetall(keys.feedback(member))
        hashes = await pipe.execute()
    items = [item for item in map(parsed_item, hashes) if item is not None]
    next_cursor = encode_cursor(rows[-1]) if len(rows) == limit else None
    return FeedbackPage(items=items, total=total, next_cursor=next_cursor)


def parsed_item(fields: dict[str, str]) -> FeedbackItem | None:
    """A hash that is gone or unreadable is skipped, not a failed page."""
    if not fields:
        return None
    try:
        return FeedbackItem.from_hash(fields)
    except ValidationError as error:
        log.warning("unreadable feedback hash skipped", extra={"id": fields.get("id"), "error": str(error)})
        return None


@router.get("/feedback/{item_id}", response_model=FeedbackItem, responses=error_responses(404))
async def get_feedback(resources: Resources, item_id: str) -> FeedbackItem:
    item = parsed_item(await resources.redis.hgetall(resources.keys.feedback(item_id)))
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no feedback item {item_id}")
    return item
