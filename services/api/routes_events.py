"""What became of an accepted event: the worker's recorded outcome, or `pending` while it waits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import BaseModel

from services.api.auth import require_api_key
from services.api.entry_ids import EventId
from services.api.errors import error_responses
from services.api.resources import Resources
from services.ingest.outcomes import Outcome, OutcomeField, find_event

router = APIRouter(
    prefix="/ingest",
    tags=["ingest"],
    dependencies=[Depends(require_api_key)],
    responses=error_responses(401, 404, 422, 503),
)


class EventStatus(BaseModel):
    event_id: str
    status: str
    feedback_id: str | None = None
    reason: str | None = None
    error: str | None = None
    dead_letter_id: str | None = None


@router.get("/events/{event_id}", response_model=EventStatus, response_model_exclude_none=True)
async def event_status(resources: Resources, event_id: Annotated[EventId, Path()]) -> EventStatus:
    """The event's partition's hour hash, then (no record yet) its stream; a bare entry id asks
    every partition in one pipeline each."""
    found = await find_event(resources.redis, resources.keys, event_id)
    if found is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no event {event_id} (unknown, or its outcome has expired)"
        )
    recorded = found.outcome
    if recorded is None:
        return EventStatus(event_id=event_id, status=Outcome.PENDING)
    return EventStatus(
        event_id=event_id,
        status=recorded.get(OutcomeField.STATUS, ""),
        feedback_id=recorded.get(OutcomeField.FEEDBACK_ID) or None,
        reason=recorded.get(OutcomeField.REASON) or None,
        error=recorded.get(OutcomeField.ERROR) or None,
        dead_letter_id=recorded.get(OutcomeField.DEAD_LETTER_ID) or None,
    )
