"""The default vector index: an append-only log in Redis, replayed into a numpy matrix per replica.

Redis holds the truth (a stream of upsert and reassign records), so every clusterer replica sees
the same vectors and a restart loses nothing; each replica keeps a local float32 matrix and reads
only the log entries it has not seen before each query. Search is exact: one matrix product.
The clusterer queries under its assignment lock, and every write happens under that lock too, so
the log a query has just caught up with is complete.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
from redis.asyncio import Redis

from services.clusterer.vector_index.base import Match, VectorRecord

PAGE = 500
_OP, _IDS, _CLUSTERS, _VECTORS = b"op", b"ids", b"clusters", b"vectors"
_UPSERT, _REASSIGN = b"upsert", b"reassign"
_SEPARATOR = "\n"


class _Matrix:
    """The replica's copy: row per item id, grown by doubling so appends stay amortised O(1)."""

    def __init__(self, dimensions: int) -> None:
        self.rows: dict[str, int] = {}
        self.cluster_of: list[str] = []
        self.ids: list[str] = []
        self.vectors = np.zeros((1024, dimensions), dtype=np.float32)

    def upsert(self, ids: Sequence[str], clusters: Sequence[str], vectors: np.ndarray) -> None:
        for item_id, cluster_id, vector in zip(ids, clusters, vectors, strict=True):
            row = self.rows.get(item_id)
            if row is None:
                row = self._append(item_id, cluster_id)
            self.cluster_of[row] = cluster_id
            self.vectors[row] = vector

    def reassign(self, ids: Sequence[str], cluster_id: str) -> None:
        for item_id in ids:
            row = self.rows.get(item_id)
            if row is not None:
                self.cluster_of[row] = cluster_id

    def _append(self, item_id: str, cluster_id: str) -> int:
        row = len(self.ids)
        if row == len(self.vectors):
            self.vectors = np.concatenate([self.vectors, np.zeros_like(self.vectors)])
        self.rows[item_id] = row
        self.ids.append(item_id)
        self.cluster_of.append(cluster_id)
        return row


class RedisVectorIndex:
    def __init__(self, redis: Redis, log_key: str, dimensions: int) -> None:
        """`redis` must not decode replies (see `shared.redis_connection.binary_twin`)."""
        self._redis = redis
        self._log_key = log_key
        self._dimensions = dimensions
        self._matrix = _Matrix(dimensions)
        self._last_entry = b"0-0"
        self._sync_lock = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._matrix.ids)

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        if not records:
            return
        vectors = np.stack([record.vector for record in records]).astype(np.float32)
        if vectors.shape[1] != self._dimensions:
            raise ValueError(f"vectors have {vectors.shape[1]} dimensions, the index {self._dimensions}")
        fields: dict[bytes, bytes] = {
            _OP: _UPSERT,
            _IDS: _SEPARATOR.join(record.id for record in records).encode(),
            _CLUSTERS: _SEPARATOR.join(record.cluster_id for record in records).encode(),
            _VECTORS: vectors.tobytes(),
        }
        await self._redis.xadd(self._log_key, fields)  # type: ignore[arg-type]
        await self.sync()

    async def reassign(self, ids: Sequence[str], cluster_id: str) -> None:
        if not ids:
            return
        fields = {_OP: _REASSIGN, _IDS: _SEPARATOR.join(ids).encode(), _CLUSTERS: cluster_id.encode()}
        await self._redis.xadd(self._log_key, fields)  # type: ignore[arg-type]
        await self.sync()

    async def query(self, vectors: np.ndarray, top_k: int) -> list[list[Match]]:
        await self.sync()
        count = len(self._matrix.ids)
        if count == 0 or top_k <= 0:
            return [[] for _ in range(len(vectors))]
        scores = np.asarray(vectors, dtype=np.float32) @ self._matrix.vectors[:count].T
        k = min(top_k, count)
        best = (
            np.argpartition(-scores, k - 1, axis=1)[:, :k]
            if k < count
            else np.tile(np.arange(count), (len(scores), 1))
        )
        return [
            self._matches(row_scores, row_best) for row_scores, row_best in zip(scores, best, strict=True)
        ]

    async def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        await self.sync()
        rows = self._matrix.rows
        return {item_id: self._matrix.vectors[rows[item_id]].copy() for item_id in ids if item_id in rows}

    def _matches(self, scores: np.ndarray, candidates: np.ndarray) -> list[Match]:
        ordered = candidates[np.argsort(-scores[candidates], kind="stable")]
        ids, clusters = self._matrix.ids, self._matrix.cluster_of
        return [Match(ids[row], float(scores[row]), clusters[row]) for row in ordered]

    async def sync(self) -> None:
        """Apply every log entry written since the last sync (by any replica)."""
        async with self._sync_lock:
            while True:
                entries = await self._redis.xrange(self._log_key, min=b"(" + self._last_entry, count=PAGE)
                for entry_id, fields in entries:
                    self._apply(fields)
                    self._last_entry = entry_id
                if len(entries) < PAGE:
                    return

    def _apply(self, fields: dict[bytes, bytes]) -> None:
        ids = fields[_IDS].decode().split(_SEPARATOR)
        if fields[_OP] == _UPSERT:
            clusters = fields[_CLUSTERS].decode().split(_SEPARATOR)
            vectors = np.frombuffer(fields[_VECTORS], dtype=np.float32).reshape(len(ids), self._dimensions)
            self._matrix.upsert(ids, clusters, vectors)
        else:
            self._matrix.reassign(ids, fields[_CLUSTERS].decode())
