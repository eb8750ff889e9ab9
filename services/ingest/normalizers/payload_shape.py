"""Reading untrusted JSON into typed shapes, shared by the normalizers and the API's 422 answers.

The API validates a request with the same shape its normalizer parses, so anything it accepts
normalizes; a failure is described field by field so a producer (or a dead letter) says what to fix.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError

from services.ingest.normalized import InvalidPayload

Shape = TypeVar("Shape")


def _number_to_text(value: Any) -> Any:
    """Sources send ids as numbers or strings interchangeably (Sentry issue ids, GitHub ids)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


EXPECTED_OBJECT = "expected a JSON object"
"""The error a shape-detecting union gives for anything but an object."""

IdText = Annotated[str, BeforeValidator(_number_to_text, json_schema_input_type=str | int)]
"""An identifier that may arrive as a JSON number; kept as text."""

_OUT_OF_RANGE = "must fall within the years 1 to 9999 in UTC"


def _within_utc_range(moment: datetime) -> datetime:
    """Every moment is converted to UTC somewhere downstream (a score, a sort); it must survive that."""
    try:
        moment.astimezone(UTC) if moment.tzinfo else moment
    except OverflowError as error:
        raise ValueError(_OUT_OF_RANGE) from error
    return moment


def _epoch_within_range(seconds: float) -> float:
    try:
        datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError) as error:
        raise ValueError(_OUT_OF_RANGE) from error
    return seconds


Moment = Annotated[datetime, AfterValidator(_within_utc_range)]
"""A date a source sends; one the normalizer could not convert is a 422 at the API, not a retried event."""

EpochSeconds = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_epoch_within_range)]
"""Seconds since 1970 (Reddit's `created_utc`): finite, and a representable date."""


def describe(error: ValidationError) -> str:
    """`path: message` per problem, without echoing the (possibly large) input."""
    problems = []
    for problem in error.errors(include_url=False, include_input=False, include_context=False):
        path = ".".join(str(part) for part in problem["loc"]) or "payload"
        problems.append(f"{path}: {problem['msg']}")
    return "; ".join(problems)


def parse_payload(shape: TypeAdapter[Shape], payload: object) -> Shape:
    """The typed payload, or `InvalidPayload` (dead-lettered at once) naming each bad field."""
    try:
        return shape.validate_python(payload)
    except ValidationError as error:
        raise InvalidPayload(describe(error)) from error
