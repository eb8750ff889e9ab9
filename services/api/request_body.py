"""Reading a JSON request body within MAX_BODY_BYTES, keeping the raw bytes for signatures.

The declared Content-Length is checked first (a cheap early 413), then the bytes actually read,
since a chunked body declares nothing and a client may lie.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, status


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


async def read_json_body(request: Request, limit: int) -> JsonBody:
    _check_declared_length(request, limit)
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise _too_large(limit)
    raw = bytes(received)
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "request body is not UTF-8") from error
    except json.JSONDecodeError as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"request body is not valid JSON: {error}"
        ) from error
    except RecursionError as error:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "request body JSON is nested too deeply") from error
    return JsonBody(raw, text, data)
