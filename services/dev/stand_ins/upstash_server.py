"""Upstash Vector's REST API, as the upstash-vector SDK speaks it, with an in-memory cosine index.

Every call is `POST {url}/{command}[/{namespace}]` with `Authorization: Bearer <token>`; replies use
the envelope `{"result": ...}` and errors `{"error": ..., "status": ...}`. Query scores are the
service's normalised cosine `(1 + cos) / 2` (tests/fixtures/upstash/query_response.json). A query
body that is a JSON array is a batch (query_many); a batch of one answers a single result list,
as the service does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from services.dev.stand_ins.scripted_http_server import RecordedRequest, Reply, ScriptedHttpServer


def error_reply(status: int, message: str) -> Reply:
    return Reply(status, {"error": message, "status": status})


def rate_limited() -> Reply:
    return error_reply(429, "ERR max requests limit exceeded. Limit: 1000, Usage: 1000.")


def server_error() -> Reply:
    return error_reply(500, "Internal server error")


def bad_gateway_page() -> Reply:
    """What a proxy in front of the service answers: HTML, not JSON."""
    return Reply(502, raw=b"<html><body><h1>502 Bad Gateway</h1></body></html>")


@dataclass
class StoredVector:
    vector: np.ndarray
    metadata: dict[str, Any] | None
    data: str | None


class UpstashServer(ScriptedHttpServer):
    def __init__(self, dimension: int, token: str = "test-upstash-token") -> None:
        super().__init__()
        self.dimension = dimension
        self.token = token
        self.namespaces: dict[str, dict[str, StoredVector]] = {}

    def route(self, request: RecordedRequest) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return error_reply(401, "Unauthorized: Invalid auth token")
        command, _, namespace = request.path.strip("/").partition("/")
        handler = _COMMANDS.get(command)
        if handler is None:
            return error_reply(404, f"Not Found: {request.path}")
        try:
            return Reply(200, {"result": handler(self, namespace, request)})
        except _InvalidRequest as error:
            return error_reply(422, str(error))

    def _namespace(self, namespace: str) -> dict[str, StoredVector]:
        return self.namespaces.setdefault(namespace, {})

    def _upsert(self, namespace: str, request: RecordedRequest) -> str:
        body = request.body if isinstance(request.body, list) else [request.body]
        stored = self._namespace(namespace)
        for item in body:
            vector = np.asarray(item["vector"], dtype=np.float64)
            if vector.shape != (self.dimension,):
                raise _InvalidRequest(f"Invalid vector dimension: {vector.size}, expected: {self.dimension}")
            stored[str(item["id"])] = StoredVector(vector, item.get("metadata"), item.get("data"))
        return "Success"

    def _query(self, namespace: str, request: RecordedRequest) -> Any:
        if isinstance(request.body, list):
            results = [self._query_one(namespace, query) for query in request.body]
            return results[0] if len(results) == 1 else results
        return self._query_one(namespace, request.body)

    def _query_one(self, namespace: str, query: dict[str, Any]) -> list[dict[str, Any]]:
        if query.get("filter"):
            raise _InvalidRequest("filters are not supported by this test server")
        target = np.asarray(query["vector"], dtype=np.float64)
        if target.shape != (self.dimension,):
            raise _InvalidRequest(f"Invalid vector dimension: {target.size}, expected: {self.dimension}")
        scored = [
            (_normalised_cosine(target, item.vector), item_id, item)
            for item_id, item in self._namespace(namespace).items()
        ]
        scored.sort(key=lambda entry: entry[0], reverse=True)
        return [
            _result(item_id, score, item, query)
            for score, item_id, item in scored[: int(query.get("topK", 10))]
        ]

    def _fetch(self, namespace: str, request: RecordedRequest) -> list[dict[str, Any] | None]:
        stored = self._namespace(namespace)
        body = request.body
        return [
            _result(item_id, None, stored[item_id], body) if item_id in stored else None
            for item_id in body["ids"]
        ]

    def _delete(self, namespace: str, request: RecordedRequest) -> dict[str, int]:
        stored = self._namespace(namespace)
        deleted = [item_id for item_id in request.body["ids"] if stored.pop(item_id, None) is not None]
        return {"deleted": len(deleted)}

    def _reset(self, namespace: str, request: RecordedRequest) -> str:
        if request.query == "all":
            self.namespaces.clear()
        else:
            self._namespace(namespace).clear()
        return "Success"

    def _info(self, namespace: str, request: RecordedRequest) -> dict[str, Any]:
        counts = {
            name: {"vectorCount": len(items), "pendingVectorCount": 0}
            for name, items in self.namespaces.items()
        }
        return {
            "vectorCount": sum(len(items) for items in self.namespaces.values()),
            "pendingVectorCount": 0,
            "indexSize": 0,
            "dimension": self.dimension,
            "similarityFunction": "COSINE",
            "namespaces": counts,
        }

    def _list_namespaces(self, namespace: str, request: RecordedRequest) -> list[str]:
        return sorted(self.namespaces)


class _InvalidRequest(ValueError):
    pass


_COMMANDS = {
    "upsert": UpstashServer._upsert,
    "query": UpstashServer._query,
    "fetch": UpstashServer._fetch,
    "delete": UpstashServer._delete,
    "reset": UpstashServer._reset,
    "info": UpstashServer._info,
    "list-namespaces": UpstashServer._list_namespaces,
}


def _normalised_cosine(a: np.ndarray, b: np.ndarray) -> float:
    norms = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(a @ b) / norms if norms else 0.0
    return (1.0 + cosine) / 2.0


def _result(item_id: str, score: float | None, item: StoredVector, flags: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"id": item_id}
    if score is not None:
        result["score"] = score
    if flags.get("includeVectors"):
        result["vector"] = [float(value) for value in item.vector]
    if flags.get("includeMetadata") and item.metadata is not None:
        result["metadata"] = item.metadata
    if flags.get("includeData") and item.data is not None:
        result["data"] = item.data
    return result
