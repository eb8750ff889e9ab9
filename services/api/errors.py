"""Error answers: their documented shape, and the handlers for failures that are not a route's own.

Redis down is 503, a bug is 500; neither leaks internals (messages, tracebacks), and the request id
lets an operator find the log line. A client that hung up is 499 and logged at INFO: it is not a
server error. A 405 lists every method the path allows, whichever route the router tried first.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services.api.request_body import CLIENT_CLOSED_REQUEST, ClientClosedRequest
from services.api.request_id import HEADER
from services.api.resources import request_id

log = logging.getLogger(__name__)


class Problem(BaseModel):
    """One reason a request was refused; `loc` is where (`["body", "items", 3, "title"]`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    """Every 4xx and 5xx: `detail` is a sentence, or for 422 the list of problems."""

    detail: str | list[Problem]
    request_id: str | None = None


_MEANINGS = {
    400: "The body is not JSON (or not UTF-8), or the request contradicts itself.",
    401: "Missing or wrong API key or webhook signature.",
    403: "A valid key that is not the admin key.",
    404: "No such resource.",
    413: "Body over MAX_BODY_BYTES, or a batch over MAX_BATCH_ITEMS.",
    422: "The request is well-formed JSON but invalid; `detail` lists each problem and where it is.",
    503: "Redis is unreachable. For a producer endpoint the entry may or may not have been stored: "
    "retry with the same Idempotency-Key.",
}


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries that document these error codes with `ErrorBody`."""
    return {code: {"model": ErrorBody, "description": _MEANINGS[code]} for code in codes}


def _answer(request: Request, status_code: int, detail: str) -> JSONResponse:
    rid = request_id(request)
    return JSONResponse({"detail": detail, "request_id": rid}, status_code=status_code, headers={HEADER: rid})


async def redis_unavailable(request: Request, error: Exception) -> JSONResponse:
    log.warning("redis unavailable", extra={"request_id": request_id(request), "error": repr(error)})
    return _answer(request, status.HTTP_503_SERVICE_UNAVAILABLE, "storage unavailable, retry later")


async def client_closed(request: Request, error: Exception) -> JSONResponse:
    """Nobody reads this answer; it exists so the access log and the metrics say 499, not 500."""
    log.info("client closed the request", extra={"request_id": request_id(request), "path": request.url.path})
    return _answer(request, CLIENT_CLOSED_REQUEST, "client closed the request")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path, found by asking the routes themselves (the
    router stops at the first route whose path matches, so its own `Allow` names only that route's)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]


async def http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
        allow = {"Allow": ", ".join(allowed_methods(request))}
        error = StarletteHTTPException(error.status_code, error.detail, headers=allow)
    return await http_exception_handler(request, error)


async def unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"request_id": request_id(request)}, exc_info=error)
    return _answer(request, status.HTTP_500_INTERNAL_SERVER_ERROR, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RedisError, redis_unavailable)
    app.add_exception_handler(ClientClosedRequest, client_closed)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
