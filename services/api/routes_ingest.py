"""Producer endpoints for in-house producers: Reddit (the poller), manual text, generic feedback."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter

from services.api.acceptance import (
    ACCEPTED,
    accept_many,
    accept_one,
    check_batch_size,
    normalizes,
    problem,
)
from services.api.auth import require_api_key
from services.api.errors import error_responses
from services.api.openapi_document import raw_json_body
from services.api.request_body import read_json_body
from services.api.resources import Resources
from services.ingest.normalizers.feedback import FeedbackPayload
from services.ingest.normalizers.manual import MANUAL_PAYLOAD
from services.ingest.normalizers.reddit import RedditPost

router = APIRouter(
    prefix="/ingest",
    tags=["ingest"],
    dependencies=[Depends(require_api_key)],
    responses={**ACCEPTED, **error_responses(400, 401, 413, 422, 503)},
)


class FeedbackBatch(BaseModel):
    items: list[FeedbackPayload]


REDDIT_BODY: TypeAdapter[Any] = TypeAdapter(RedditPost | list[RedditPost])  # type: ignore[arg-type]
FEEDBACK_BODY: TypeAdapter[Any] = TypeAdapter(FeedbackPayload | FeedbackBatch)


@router.post("/reddit", status_code=202, openapi_extra=raw_json_body("RedditIngestBody", REDDIT_BODY))
async def ingest_reddit(request: Request, resources: Resources) -> JSONResponse:
    """One post (the poller's item shape or a raw `t3` listing child), or a JSON array of them."""
    body = await read_json_body(request, resources.settings.max_body_bytes)
    if isinstance(body.data, list):
        check_batch_size(request, len(body.data))
        trials = normalizes(request, "reddit", body.data, ("body",), batch=True)
        return await accept_many(request, "reddit", body.data, trials)
    [trial] = normalizes(request, "reddit", [body.data], ("body",), batch=False)
    return await accept_one(request, "reddit", body.text, trial)


@router.post("/manual", status_code=202, openapi_extra=raw_json_body("ManualIngestBody", MANUAL_PAYLOAD))
async def ingest_manual(request: Request, resources: Resources) -> JSONResponse:
    """`{"text": ..., "title"?: ..., "metadata"?: {...}}`."""
    body = await read_json_body(request, resources.settings.max_body_bytes)
    [trial] = normalizes(request, "manual", [body.data], ("body",), batch=False)
    return await accept_one(request, "manual", body.text, trial)


@router.post("/feedback", status_code=202, openapi_extra=raw_json_body("FeedbackIngestBody", FEEDBACK_BODY))
async def ingest_feedback(request: Request, resources: Resources) -> JSONResponse:
    """One FeedbackItem-shaped object from any service, or `{"items": [...]}`."""
    body = await read_json_body(request, resources.settings.max_body_bytes)
    if isinstance(body.data, dict) and "items" in body.data:
        items = body.data["items"]
        if not isinstance(items, list):
            raise RequestValidationError([problem(("body", "items"), "expected a JSON array")])
        check_batch_size(request, len(items))
        trials = normalizes(request, "feedback", items, ("body", "items"), batch=True)
        return await accept_many(request, "feedback", items, trials)
    [trial] = normalizes(request, "feedback", [body.data], ("body",), batch=False)
    return await accept_one(request, "feedback", body.text, trial)
