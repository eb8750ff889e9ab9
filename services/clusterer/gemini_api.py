"""Access to the Gemini API shared by the embedder and the summarizer: the client and how its
errors read for retries.

The SDK's own retries stay off: they ignore the RetryInfo delay a quota 429 names (python-genai
#1875), which is exactly the wait that gets the next call through.
"""

from __future__ import annotations

import re

import httpx
from google import genai
from google.genai import errors, types

from shared.retry_policy import RemoteService

TRANSIENT_STATUS_CODES = frozenset({408, 429, 500, 502, 503, 504})
_RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def gemini_client(api_key: str, base_url: str, timeout_seconds: float) -> genai.Client:
    """An empty base_url leaves the SDK's choice (GOOGLE_GEMINI_BASE_URL, else Google's endpoint)."""
    return genai.Client(
        api_key=api_key,
        http_options=types.HttpOptions(base_url=base_url or None, timeout=int(timeout_seconds * 1000)),
    )


def is_transient(error: BaseException) -> bool:
    if isinstance(error, errors.APIError):
        return error.code in TRANSIENT_STATUS_CODES
    return isinstance(error, httpx.TransportError)


def requested_delay(error: BaseException) -> float | None:
    """The RetryInfo `retryDelay` (a google.protobuf.Duration such as "53s" or "0.5s"), if any."""
    if not isinstance(error, errors.APIError) or not isinstance(error.details, dict):
        return None
    details = error.details.get("error", {}).get("details") or []
    for detail in details:
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO_TYPE:
            match = _DURATION.match(str(detail.get("retryDelay", "")))
            if match:
                return float(match[1])
    return None


GEMINI = RemoteService("gemini", is_transient, requested_delay)
