"""The Gemini REST API's embedding and generation endpoints, as google-genai speaks them.

`POST /{v1|v1beta}/models/{model}:batchEmbedContents` answers deterministic, deliberately
unnormalised vectors derived from each text's hash (the real 768-d vectors are not unit length
either), and rejects batches over 100 as the real API does. `:generateContent` answers the JSON
text set in `label_reply`. Error bodies follow google.rpc.Status as the API sends them
(tests/fixtures/gemini/error_429.json).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import numpy as np

from services.dev.stand_ins.scripted_http_server import RecordedRequest, Reply, ScriptedHttpServer

MAX_BATCH = 100
DEFAULT_DIMENSIONS = 3072
_METHOD_PATH = re.compile(r"^/(?:v1|v1beta)/models/(?P<model>[^/:]+):(?P<method>\w+)$")


def error_reply(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return Reply(code, {"error": error})


def quota_exhausted(retry_delay: str) -> Reply:
    """A quota 429 with the RetryInfo detail that names how long to wait (e.g. "0.3s")."""
    return error_reply(
        429,
        "RESOURCE_EXHAUSTED",
        f"You exceeded your current quota. Please retry in {retry_delay}.",
        [
            {"@type": "type.googleapis.com/google.rpc.Help", "links": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
        ],
    )


def unavailable() -> Reply:
    return error_reply(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")


def text_vector(text: str, dimensions: int) -> list[float]:
    """Same text, same vector, in every process; scaled so that callers must normalise."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    vector = np.random.default_rng(seed).standard_normal(dimensions) * 0.05
    return [float(value) for value in vector]


class GeminiServer(ScriptedHttpServer):
    def __init__(self, api_key: str = "test-gemini-key") -> None:
        super().__init__()
        self.api_key = api_key
        self.label_reply = json.dumps({"title": "Login fails", "summary": "Users cannot log in."})

    def embedded_batches(self) -> list[list[str]]:
        """The texts of every successful-or-not batchEmbedContents call, in order."""
        return [
            [_request_text(item) for item in request.body["requests"]]
            for request in self.requests_to(":batchEmbedContents")
        ]

    def route(self, request: RecordedRequest) -> Reply:
        match = _METHOD_PATH.match(request.path)
        if request.method != "POST" or match is None:
            return error_reply(404, "NOT_FOUND", f"no route for {request.method} {request.path}")
        if request.headers.get("x-goog-api-key") != self.api_key:
            return error_reply(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
        if match["method"] == "batchEmbedContents":
            return _batch_embed(match["model"], request.body)
        if match["method"] == "generateContent":
            return self._generate(request.body)
        return error_reply(404, "NOT_FOUND", f"method {match['method']} is not served here")

    def _generate(self, body: Any) -> Reply:
        config = body.get("generationConfig", {})
        if config.get("responseMimeType") == "application/json" and "responseSchema" not in config:
            return error_reply(400, "INVALID_ARGUMENT", "responseSchema is required for this test server")
        return Reply(
            200,
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": self.label_reply}]},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
                "modelVersion": "gemini-2.5-flash",
            },
        )


def _batch_embed(model: str, body: Any) -> Reply:
    requests = body.get("requests", [])
    if len(requests) > MAX_BATCH:
        return error_reply(
            400,
            "INVALID_ARGUMENT",
            f"* BatchEmbedContentsRequest.requests: at most {MAX_BATCH} requests can be in one batch\n",
        )
    embeddings = []
    for item in requests:
        if item.get("model") != f"models/{model}":
            return error_reply(400, "INVALID_ARGUMENT", f"model {item.get('model')} does not match the URL")
        dimensions = int(item.get("outputDimensionality") or DEFAULT_DIMENSIONS)
        embeddings.append({"values": text_vector(_request_text(item), dimensions)})
    return Reply(200, {"embeddings": embeddings})


def _request_text(item: dict[str, Any]) -> str:
    return "".join(part.get("text", "") for part in item["content"]["parts"])
