"""Reading a JSON request body within MAX_BODY_BYTES, keeping the raw bytes for signatures.

The declared Content-Length is checked first (a cheap early 413), then the bytes actually read,
since a chunked body declares nothing and a client may lie. Routes that read their body raw (the
producer endpoints, for webhook signatures) call `read_json_body`; routes whose body FastAPI parses
get the same strict parser through `StrictJsonRoute`, so every JSON body in the API obeys one rule.
A client that hangs up before its body is read is a `ClientClosedRequest` (499), not a server error.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import ClientDisconnect

from services.api import strict_json
from services.api.resources import app_resources

CLIENT_CLOSED_REQUEST = 499  # nginx's code for a client that went away before the answer


class ClientClosedRequest(HTTPException):
    def __init__(self) -> None:
        super().__init__(CLIENT_CLOSED_REQUEST, "client closed the request before its body was read")


@dataclass(frozen=True)
class JsonBody:
    raw: bytes
    text: str
    data: Any


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_CONTENT_TOO_LARGE, f"request body larger than {limit} bytes (MAX_BODY_BYTES)"
    )


def _check_declared_length(request: Request, limit: int) -> None:
    declared = request.headers.get("content-length")
    if declared is None:
        return
    if not declared.isdigit():
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid Content-Length header")
    if int(declared) > limit:
        raise _too_large(limit)


def parsed(request: Request, raw: bytes) -> Any:
    """The strict parse with the app's MAX_JSON_DEPTH: 400 when not JSON, 422 when not carriable."""
    try:
        return strict_json.loads(raw, app_resources(request).settings.max_json_depth)
    except strict_json.NotJson as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(error)) from error
    except strict_json.UnacceptableJson as error:
        raise RequestValidationError(
            [{"type": "value_error", "loc": error.location, "msg": error.message}]
        ) from error


async def read_json_body(request: Request, limit: int) -> JsonBody:
    _check_declared_length(request, limit)
    received = bytearray()
    try:
        async for chunk in request.stream():
            received += chunk
            if len(received) > limit:
                raise _too_large(limit)
    except ClientDisconnect as error:
        raise ClientClosedRequest() from error
    raw = bytes(received)
    data = parsed(request, raw)
    return JsonBody(raw, raw.decode("utf-8"), data)


class StrictJsonRequest(Request):
    """FastAPI parses a model body with `request.json()`; this makes that the strict parser."""

    async def body(self) -> bytes:
        try:
            return await super().body()
        except ClientDisconnect as error:
            raise ClientClosedRequest() from error

    async def json(self) -> Any:
        try:
            return parsed(self, await self.body())
        except RequestValidationError as error:
            # FastAPI passes an HTTPException raised while parsing through; anything else becomes 400.
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, list(error.errors())) from error


class StrictJsonRoute(APIRoute):
    """The route class of every router whose bodies FastAPI parses (configuration, acks)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler
