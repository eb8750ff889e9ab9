"""JSON answers for failures that are not the caller's fault: Redis down is 503, a bug is 500.

Neither leaks internals (messages, tracebacks); the request id lets an operator find the log line.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from services.api.request_id import HEADER
from services.api.resources import request_id

log = logging.getLogger(__name__)


def _answer(request: Request, status_code: int, detail: str) -> JSONResponse:
    rid = request_id(request)
    return JSONResponse({"detail": detail, "request_id": rid}, status_code=status_code, headers={HEADER: rid})


async def redis_unavailable(request: Request, error: Exception) -> JSONResponse:
    log.warning("redis unavailable", extra={"request_id": request_id(request), "error": repr(error)})
    return _answer(request, status.HTTP_503_SERVICE_UNAVAILABLE, "storage unavailable, retry later")


async def unexpected(request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"request_id": request_id(request)}, exc_info=error)
    return _answer(request, status.HTTP_500_INTERNAL_SERVER_ERROR, "internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RedisError, redis_unavailable)
    app.add_exception_handler(Exception, unexpected)
