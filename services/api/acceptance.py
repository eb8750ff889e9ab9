"""Accepting events: validate each payload's shape (422 with pydantic's reasons), append, answer 202.

A payload is published exactly as received when it is the whole body; an element of a batch is
published on its own (re-serialized), one stream entry per event, all in one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter, ValidationError

from services.api.resources import app_resources, request_id
from shared.publisher import RawEvent

Shape = TypeAdapter[Any]
Parsed = TypeVar("Parsed")
Location = tuple[str | int, ...]


def validated(shape: TypeAdapter[Parsed], data: Any, location: Location = ("body",)) -> Parsed:
    try:
        return shape.validate_python(data)
    except ValidationError as error:
        raise RequestValidationError(problems(error, location)) from error


def validated_each(shape: TypeAdapter[Parsed], items: Any, location: Location) -> list[Parsed]:
    """Every element checked, every problem reported at once (`body.items.3.title`)."""
    if not isinstance(items, list):
        raise RequestValidationError([problem(location, "expected a JSON array")])
    parsed: list[Parsed] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            parsed.append(shape.validate_python(item))
        except ValidationError as error:
            errors += problems(error, (*location, index))
    if errors:
        raise RequestValidationError(errors)
    return parsed


def problems(error: ValidationError, location: Location) -> list[dict[str, Any]]:
    found = error.errors(include_url=False, include_input=False, include_context=False)
    return [{**entry, "loc": (*location, *entry["loc"])} for entry in found]


def problem(location: Location, message: str) -> dict[str, Any]:
    return {"type": "value_error", "loc": location, "msg": message}


def check_batch_size(request: Request, count: int) -> None:
    limit = app_resources(request).settings.max_batch_items
    if count > limit:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"batch of {count} items is larger than {limit} (MAX_BATCH_ITEMS)",
        )


async def accept_one(request: Request, source: str, payload_text: str) -> JSONResponse:
    event = RawEvent(source, payload_text, request_id(request))
    event_id = await app_resources(request).publisher.publish(event)
    return JSONResponse({"event_id": event_id}, status_code=status.HTTP_202_ACCEPTED)


async def accept_many(request: Request, source: str, payloads: Sequence[Any], **extra: Any) -> JSONResponse:
    """One entry per payload; the caller has checked the batch size before validating it."""
    events = [RawEvent.from_json(source, payload, request_id(request)) for payload in payloads]
    event_ids = await app_resources(request).publisher.publish_many(events) if events else []
    return JSONResponse({"event_ids": event_ids, **extra}, status_code=status.HTTP_202_ACCEPTED)


def ignored(reason: str) -> JSONResponse:
    """A valid delivery that carries no feedback: acknowledged (so the sender does not retry), not stored."""
    return JSONResponse({"ignored": reason}, status_code=status.HTTP_202_ACCEPTED)
