"""Accepting events: validate each payload (422 with the reasons), append, answer 202.

Validation is a trial run of the source's normalizer, which is pure and validates the payload's
shape itself (pydantic's field-by-field reasons): whatever the worker would refuse (a wrong shape, a
date it cannot convert, a Sentry report without an id) is refused here, while the producer can
still fix it, instead of being dead-lettered later. Webhooks also validate their delivery shape
first, because the route needs the parsed delivery (its event kind, its pull requests).

The trial also yields the id of the item each payload will become, which routes it to its
partition's stream (services/ingest/routing.py).

A payload is published exactly as received when it is the whole body; an element of a batch is
published on its own (re-serialized), one stream entry per event, all in one round trip.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from fastapi import HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.api.resources import app_resources, request_id
from services.ingest.normalized import InvalidPayload
from services.ingest.normalizers import NORMALIZERS
from services.ingest.routing import routed_item_id, trial_context
from shared.publisher import RawEvent

Parsed = TypeVar("Parsed")
Location = tuple[str | int, ...]
IDEMPOTENCY_HEADER = "Idempotency-Key"
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


@dataclass(frozen=True, slots=True)
class Trial:
    """What a payload's trial normalization settled: the item id it is routed by and the
    idempotency key it is published with (that id may derive from it)."""

    item_id: str
    idempotency_key: str


class Accepted(BaseModel):
    """A 202: the entry id of the event (`event_id`), of each batch element (`event_ids`), or why a
    valid delivery was not stored (`ignored`)."""

    event_id: str | None = None
    event_ids: list[str] | None = None
    skipped_pull_requests: int | None = None
    ignored: str | None = None


ACCEPTED: dict[int | str, dict[str, Any]] = {
    202: {"model": Accepted, "description": "Durably appended to `stream:ingest` (or ignored, with why)."}
}


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


def normalizes(
    request: Request, source: str, payloads: Sequence[Any], location: Location, batch: bool
) -> list[Trial]:
    """The trial normalization: 422 naming each payload the worker could not turn into an item;
    else each payload's routing.

    A payload of the wrong shape fails inside the normalizer's own validation; its field-by-field
    problems are reported as they are, so the shape is validated once, by the normalizer.
    Element `i` of a batch sent with key `K` carries `K#i`, so each element is its own item.
    """
    key = idempotency_key(request)
    received_at = datetime.now(UTC)
    errors: list[dict[str, Any]] = []
    trials: list[Trial] = []
    for index, payload in enumerate(payloads):
        where = (*location, index) if batch else location
        event_key = f"{key}#{index}" if key and batch else key
        context = trial_context(received_at, event_key)
        try:
            result = NORMALIZERS[source](payload, context)
        except InvalidPayload as error:
            cause = error.__cause__
            shape_errors = problems(cause, where) if isinstance(cause, ValidationError) else None
            errors += shape_errors or [problem(where, f"cannot become a {source} item: {error}")]
            continue
        except (ValueError, OverflowError) as error:
            errors.append(problem(where, f"cannot become a {source} item: {error}"))
            continue
        trials.append(Trial(routed_item_id(result, context), event_key))
    if errors:
        raise RequestValidationError(errors)
    return trials


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


def idempotency_key(request: Request) -> str:
    """The producer's `Idempotency-Key`, or "" when it sent none; a malformed one is a 422."""
    presented = request.headers.get(IDEMPOTENCY_HEADER)
    if presented is None:
        return ""
    if not _IDEMPOTENCY_KEY.fullmatch(presented):
        message = "1 to 128 characters of letters, digits, '.', '_', ':' and '-' (a UUID fits)"
        raise RequestValidationError([problem(("header", IDEMPOTENCY_HEADER), message)])
    return presented


async def accept_one(request: Request, source: str, payload_text: str, trial: Trial) -> JSONResponse:
    event = RawEvent(source, payload_text, request_id(request), trial.idempotency_key, trial.item_id)
    event_id = await app_resources(request).publisher.publish(event)
    return JSONResponse({"event_id": event_id}, status_code=status.HTTP_202_ACCEPTED)


async def accept_many(
    request: Request, source: str, payloads: Sequence[Any], trials: Sequence[Trial], **extra: Any
) -> JSONResponse:
    """One entry per payload, with its trial; the caller has checked the batch size before."""
    events = [
        RawEvent.from_json(source, payload, request_id(request), trial.idempotency_key, trial.item_id)
        for payload, trial in zip(payloads, trials, strict=True)
    ]
    event_ids = await app_resources(request).publisher.publish_many(events) if events else []
    return JSONResponse({"event_ids": event_ids, **extra}, status_code=status.HTTP_202_ACCEPTED)


def ignored(reason: str) -> JSONResponse:
    """A valid delivery that carries no feedback: acknowledged (so the sender does not retry), not stored."""
    return JSONResponse({"ignored": reason}, status_code=status.HTTP_202_ACCEPTED)
