"""The default vector index: an append-only log in Redis, a local copy per replica, and snapshots.

Redis holds the truth (a stream of upsert and reassign records), so every clusterer replica sees
the same vectors and a restart loses nothing; each replica keeps a local copy (`LocalCopy`: exact
rows while small, an HNSW graph once large) and reads only the log entries it has not seen before
each query. The clusterer queries under its assignment lock, and every write happens under that
lock too, so the log a query has just caught up with is complete.

Every `SnapshotPolicy.every` upserted vectors, and once when its copy has become a graph, the
writing replica saves its copy into Redis and trims the log below it (`SnapshotStore`), so a
replica starts from the newest snapshot plus the log after it, and start-up no longer grows with
the length of history. A replica whose position was trimmed away (it was behind when the trim
came) loads the snapshot again instead of missing entries.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

from services.clusterer.vector_index.base import Match, VectorRecord
from services.clusterer.vector_index.local_copy import GRAPH, CopyImage, IndexTuning, LocalCopy
from services.clusterer.vector_index.snapshots import CHUNK_BYTES, Manifest, SnapshotStore
from shared.keys import Keys

PAGE = 500
_OP, _IDS, _CLUSTERS, _VECTORS = b"op", b"ids", b"clusters", b"vectors"
_UPSERT, _REASSIGN = b"upsert", b"reassign"
_SEPARATOR = "\n"
_START = b"0-0"  # before the first entry of any stream
_ENTRY, _BEFORE = b"entry", b"before"
_PAYLOAD_FILE = "payload.bin"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotPolicy:
    every: int = 20_000  # upserted vectors between two snapshots (VECTOR_SNAPSHOT_EVERY)
    chunk_bytes: int = CHUNK_BYTES


def _entry_order(entry_id: bytes) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition(b"-")
    return int(milliseconds), int(sequence or 0)


class RedisVectorIndex:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        index_name: str,
        dimensions: int,
        tuning: IndexTuning | None = None,
        snapshots: SnapshotPolicy | None = None,
    ) -> None:
        """`redis` must not decode replies (see `shared.redis_connection.binary_twin`)."""
        self._redis = redis
        self._log_key = keys.vectors(index_name)
        self._dimensions = dimensions
        self._tuning = tuning or IndexTuning()
        self._policy = snapshots or SnapshotPolicy()
        self._store = SnapshotStore(redis, keys, index_name, chunk_bytes=self._policy.chunk_bytes)
        self._copy = LocalCopy(dimensions, self._tuning)
        self._position = _START  # the last log entry applied to the copy
        self._previous = _START  # the entry applied before it
        self._upserted = 0  # vectors upserted into the log up to `_position`
        self._snapshot_upserted = 0  # the same count for the newest snapshot this replica knows
        self._snapshot_is_graph = False  # whether that snapshot holds a graph (or exact rows)
        self._lock = asyncio.Lock()  # the copy is read and grown by one task (and its thread) at a time

    def __len__(self) -> int:
        return len(self._copy)

    @property
    def uses_graph(self) -> bool:
        return self._copy.uses_graph

    async def upsert(self, records: Sequence[VectorRecord]) -> None:
        """The caller holds the assignment lock, so this replica may also write the snapshot."""
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
        async with self._lock:
            await self._catch_up()
            if self._snapshot_due():
                await self._snapshot()

    async def reassign(self, ids: Sequence[str], cluster_id: str) -> None:
        if not ids:
            return
        fields = {_OP: _REASSIGN, _IDS: _SEPARATOR.join(ids).encode(), _CLUSTERS: cluster_id.encode()}
        await self._redis.xadd(self._log_key, fields)  # type: ignore[arg-type]
        await self.sync()

    async def query(self, vectors: np.ndarray, top_k: int) -> list[list[Match]]:
        async with self._lock:
            await self._catch_up()
            if self._copy.uses_graph:
                return await asyncio.to_thread(self._copy.search, vectors, top_k)
            return self._copy.search(vectors, top_k)

    async def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        async with self._lock:
            await self._catch_up()
            return self._copy.vectors(ids)

    async def sync(self) -> None:
        """Apply every log entry written since the last sync (by any replica)."""
        async with self._lock:
            await self._catch_up()

    async def _catch_up(self) -> None:
        while True:
            entries = await self._next_page()
            if entries is None:
                await self._load_snapshot()
                continue
            if entries:
                await asyncio.to_thread(self._apply_page, entries)
            if len(entries) < PAGE:
                return

    async def _next_page(self) -> list[tuple[bytes, dict[bytes, bytes]]] | None:
        """The entries after this replica's position, or None when some of them were trimmed away.

        Trims only follow a snapshot, and they remove a prefix of the log: nothing this replica
        lacks is gone while the newest snapshot is not newer than its position, or begins right
        after it, or while its own last entry is still in the log."""
        after = b"(" + self._position
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hmget(self._store.manifest_key, [_ENTRY, _BEFORE])
            pipe.xrange(self._log_key, min=after, count=PAGE)
            (snapshot_entry, snapshot_before), entries = await pipe.execute()
        if (
            snapshot_entry is None
            or _entry_order(snapshot_entry) <= _entry_order(self._position)
            or snapshot_before == self._position
        ):
            return list(entries)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xrange(self._log_key, min=self._position, max=self._position, count=1)
            pipe.xrange(self._log_key, min=after, count=PAGE)
            own, entries = await pipe.execute()
        return list(entries) if own else None

    def _apply_page(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for entry_id, fields in entries:
            ids = fields[_IDS].decode().split(_SEPARATOR)
            if fields[_OP] == _UPSERT:
                clusters = fields[_CLUSTERS].decode().split(_SEPARATOR)
                vectors = np.frombuffer(fields[_VECTORS], dtype=np.float32)
                self._copy.upsert(ids, clusters, vectors.reshape(len(ids), self._dimensions))
                self._upserted += len(ids)
            else:
                self._copy.reassign(ids, fields[_CLUSTERS].decode())
            self._previous, self._position = self._position, entry_id

    async def _load_snapshot(self) -> None:
        """Replace the copy with the newest snapshot; with none left (the log and its snapshots
        were deleted, as `recluster --all` does), start again from an empty copy."""
        while True:
            manifest = await self._store.manifest()
            if manifest is None:
                self._reset(LocalCopy(self._dimensions, self._tuning), _START, _START, 0)
                self._snapshot_is_graph = False
                return
            if manifest.dimensions != self._dimensions:
                raise ValueError(
                    f"{self._log_key} snapshot has {manifest.dimensions} dimensions, "
                    f"the index {self._dimensions}"
                )
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as folder:
                image = await self._store.read(manifest, Path(folder) / _PAYLOAD_FILE)
                if image is None:
                    continue
                copy = await asyncio.to_thread(
                    LocalCopy.from_image, image, manifest.count, self._dimensions, self._tuning
                )
            self._reset(copy, manifest.entry, manifest.before, manifest.upserted)
            self._snapshot_is_graph = manifest.storage == GRAPH
            log.info(
                "vector snapshot loaded",
                extra={
                    "log": self._log_key,
                    "entry": manifest.entry.decode(),
                    "items": manifest.count,
                    "seconds": round(time.perf_counter() - started, 3),
                },
            )
            return

    def _reset(self, copy: LocalCopy, position: bytes, previous: bytes, upserted: int) -> None:
        self._copy = copy
        self._position, self._previous = position, previous
        self._upserted = self._snapshot_upserted = upserted

    def _snapshot_due(self) -> bool:
        """Every `every` vectors, and as soon as the copy is a graph that no snapshot holds yet:
        otherwise every replica starting before the next one would rebuild the graph from the log."""
        if self._upserted - self._snapshot_upserted >= self._policy.every:
            return True
        return self._copy.uses_graph and not self._snapshot_is_graph

    async def _snapshot(self) -> None:
        """Save the copy unless another replica saved one recently enough; losing the race to
        switch the manifest is harmless (the other snapshot is as good)."""
        current = await self._store.manifest()
        if current is not None:
            self._snapshot_upserted = max(self._snapshot_upserted, current.upserted)
            self._snapshot_is_graph = current.storage == GRAPH
            if _entry_order(current.entry) >= _entry_order(self._position):
                return
        if not self._snapshot_due():
            return
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            image = await asyncio.to_thread(self._copy.image, Path(folder) / _PAYLOAD_FILE)
            written = await self._write(image, current)
        if written:
            self._snapshot_upserted = self._upserted
            self._snapshot_is_graph = image.storage == GRAPH
            log.info(
                "vector snapshot written",
                extra={
                    "log": self._log_key,
                    "entry": self._position.decode(),
                    "items": len(self._copy),
                    "seconds": round(time.perf_counter() - started, 3),
                },
            )

    async def _write(self, image: CopyImage, current: Manifest | None) -> bool:
        manifest = Manifest(
            entry=self._position,
            before=self._previous,
            upserted=self._upserted,
            count=len(self._copy),
            dimensions=self._dimensions,
            storage=image.storage,
            chunks=self._store.chunk_count(image),
            ids_bytes=len(image.ids),
            clusters_bytes=len(image.clusters),
            payload_bytes=image.payload_bytes,
        )
        return await self._store.write(image, manifest, current)
