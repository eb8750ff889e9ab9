"""Upstash Vector as the clusterer's index: the production choice when Redis should hold no vectors.

One namespace per index (the embedder's name under the deployment's key prefix), so vectors of two
models or two deployments never meet in one query. Upstash reports cosine as `(1 + cos) / 2`;
matches carry raw cosine (`2s - 1`) like every other index.

The SDK decides success by the JSON body alone and retries only transport errors, so a response
hook turns 429 and 5xx replies (JSON or a proxy's HTML page) into `RetryableResponse` before the
SDK parses them, and the shared retry policy takes it from there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TypeVar

import httpx
import numpy as np
from upstash_vector import AsyncIndex, Vector
from upstash_vector.types import QueryRequest

from services.clusterer.vector_index.base import Match, VectorRecord
from shared.retry_policy import RemoteService, RetryableResponse, RetryPolicy, retry_after_seconds

CLUSTER_ID = "cluster_id"
UPSERT_BATCH = 1000
QUERY_BATCH = 100

T = TypeVar("T")


UPSTASH = RemoteService("upstash-vector")


class _StatusCheckingIndex(AsyncIndex):
    """AsyncIndex whose HTTP client raises on 429/5xx; the SDK's own transport retries are off."""

    def __init__(self, url: str, token: str, timeout_seconds: float) -> None:
        super().__init__(url, token, retries=0, allow_telemetry=False)
        self._client.timeout = httpx.Timeout(timeout_seconds, connect=min(timeout_seconds, 10.0))
        self._client.event_hooks["response"].append(_raise_for_transient_status)


async def _raise_for_transient_status(response: httpx.Response) -> None:
    """Any 5xx counts, JSON or not: a proxy in front of Upstash answers with an HTML page."""
    if response.status_code == 429 or response.status_code >= 500:
        body = (await response.aread()).decode(errors="replace")
        raise RetryableResponse(response, retry_after_seconds(response), detail=body[:200])


class UpstashVectorIndex:
    def __init__(
        self,
        url: str,
        token: str,
        namespace: str,
        *,
        retry: RetryPolicy | None = None,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.namespace = namespace
        self._index = _StatusCheckingIndex(url, token, timeout_seconds)
        self._retry = retry or RetryPolicy()

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        vectors = [
            Vector(id=record.id, vector=_floats(record.vector), metadata={CLUSTER_ID: record.cluster_id})
            for record in records
        ]
        await self._upsert_vectors(vectors)

    async def query(self, vectors: np.ndarray, top_k: int) -> list[list[Match]]:
        """Rows whose neighbours carry no cluster_id (not written by us) are left out of the matches."""
        matches: list[list[Match]] = []
        for start in range(0, len(vectors), QUERY_BATCH):
            queries: list[QueryRequest] = [
                {"vector": _floats(row), "top_k": top_k, "include_metadata": True}
                for row in vectors[start : start + QUERY_BATCH]
            ]
            results = await self._call(
                partial(self._index.query_many, queries=queries, namespace=self.namespace)
            )
            matches.extend(
                [
                    Match(
                        id=str(hit.id), score=2.0 * hit.score - 1.0, cluster_id=str(hit.metadata[CLUSTER_ID])
                    )
                    for hit in hits
                    if hit.metadata and CLUSTER_ID in hit.metadata
                ]
                for hits in results
            )
        return matches

    async def reassign(self, ids: Sequence[str], cluster_id: str) -> None:
        """Fetch and re-upsert with the new metadata: two calls per batch where `update` takes one per id."""
        for start in range(0, len(ids), UPSERT_BATCH):
            chunk = list(ids[start : start + UPSERT_BATCH])
            fetched = await self._call(
                partial(
                    self._index.fetch,
                    ids=chunk,
                    include_vectors=True,
                    include_metadata=True,
                    namespace=self.namespace,
                )
            )
            await self._upsert_vectors(
                [
                    Vector(
                        id=item.id,
                        vector=item.vector,
                        metadata={**(item.metadata or {}), CLUSTER_ID: cluster_id},
                    )
                    for item in fetched
                    if item is not None and item.vector is not None
                ]
            )

    async def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(ids), UPSERT_BATCH):
            fetched = await self._call(
                partial(
                    self._index.fetch,
                    ids=list(ids[start : start + UPSERT_BATCH]),
                    include_vectors=True,
                    namespace=self.namespace,
                )
            )
            found.update(
                (str(item.id), np.asarray(item.vector, dtype=np.float32))
                for item in fetched
                if item is not None and item.vector is not None
            )
        return found

    async def aclose(self) -> None:
        await self._index._client.aclose()

    async def _upsert_vectors(self, vectors: list[Vector]) -> None:
        for start in range(0, len(vectors), UPSERT_BATCH):
            chunk = vectors[start : start + UPSERT_BATCH]
            await self._call(partial(self._index.upsert, vectors=chunk, namespace=self.namespace))

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        return await self._retry.call(UPSTASH, call)


def _floats(row: np.ndarray) -> list[float]:
    return [float(value) for value in row]
