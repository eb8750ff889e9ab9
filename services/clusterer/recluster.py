"""`soulcaster recluster`: hand items back to the clusterer (after a new model or new thresholds).

Everything happens under the clusterer's assignment lock, so no batch assigns while clusters are
taken apart. Per chunk of clusters, the items are first marked unclustered with a fresh new-item
event (one script per partition), then removed from their clusters and the item -> cluster
authority (one fenced script): a crash anywhere leaves every item still clustered, queued again,
or both (then the clusterer keeps its cluster), never lost.

- `--all`: every item (every partition's feedback:created and unclustered set, every cluster's
  members, the authority); every cluster ends empty and is deleted, then the Redis vector logs,
  neighbour graphs, pass cursors and error-group anchors are deleted too (the next vectors come
  from whatever embedder the clusterers now run).
- `--source S`: the items of one source. Clusters left empty are deleted; a cluster that keeps
  other members gets its sum, size, per-source counts and title item corrected, using the removed
  items' vectors from the current embedder (so after changing the model, use `--all`). Their old
  vectors are pointed at no cluster in the index, so they match nothing until re-clustered.

Running it twice is safe: items already unclustered are simply queued again, and the clusterer
acks an event whose item it has already clustered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from redis.asyncio import Redis

from services.clusterer.assignment import ClusterState
from services.clusterer.cluster_store import ClusterStore
from services.clusterer.embedders.base import Embedder
from services.clusterer.lock import RedisLock
from services.clusterer.vector_index.base import VectorIndex
from services.clusterer.worker import embedding_text
from shared.keys import Keys
from shared.models import FeedbackItem

CHUNK_ITEMS = 500
LOCK_WAIT_SECONDS = 120.0
NO_CLUSTER = ""


@dataclass(frozen=True)
class ReclusterResult:
    requeued: int
    clusters_deleted: int
    clusters_shrunk: int


@dataclass(frozen=True)
class _Removal:
    """What one pass takes apart: each affected cluster's leaving members, and the items without one."""

    removed: dict[str, list[str]]
    unowned: list[str]
    shrunk: dict[str, ClusterState]


class Reclusterer:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        lock: RedisLock,
        embedder: Embedder | None = None,
        index: VectorIndex | None = None,
    ) -> None:
        """`embedder` and `index` are needed only for a filtered re-cluster."""
        self._redis = redis
        self._keys = keys
        self._lock = lock
        self._embedder = embedder
        self._index = index
        self._store = ClusterStore(redis, keys, lock.key)

    async def recluster_all(self) -> ReclusterResult:
        async with self._lock.held(LOCK_WAIT_SECONDS) as token:
            ids = set(await self._redis.hkeys(self._keys.cluster_of))
            for keys in self._keys.partitions:
                ids.update(await self._redis.zrange(keys.feedback_created, 0, -1))
                ids.update(await self._redis.smembers(keys.unclustered))
            cluster_ids = await self._redis.smembers(self._keys.clusters_all)
            async with self._redis.pipeline(transaction=False) as pipe:
                for cluster_id in cluster_ids:
                    pipe.smembers(self._keys.cluster_items(cluster_id))
                for members in await pipe.execute():
                    ids.update(members)
            result = await self._requeue(token, sorted(ids))
            patterns = (
                self._keys.vectors("*"),
                self._keys.neighbour_graph("*", "*"),
                self._keys.error_group("*"),
            )
            for pattern in patterns:
                async for log_key in self._redis.scan_iter(match=pattern):
                    await self._redis.delete(log_key)
        return result

    async def recluster_source(self, source: str) -> ReclusterResult:
        if self._embedder is None or self._index is None:
            raise ValueError("a filtered re-cluster needs the embedder and the vector index")
        async with self._lock.held(LOCK_WAIT_SECONDS) as token:
            ids = sorted(
                {
                    item_id
                    for keys in self._keys.partitions
                    for item_id in await self._redis.zrange(keys.feedback_source(source), 0, -1)
                }
            )
            result = await self._requeue(token, ids)
            await self._index.reassign(ids, NO_CLUSTER)
        return result

    async def _requeue(self, token: str, item_ids: Sequence[str]) -> ReclusterResult:
        removal = await self._plan(item_ids)
        now = datetime.now(UTC).isoformat()
        requeued = deleted = 0
        for removed, items in _chunks(removal):
            done, gone = await self._store.unassign(token, removed, removal.shrunk, items, now)
            requeued, deleted = requeued + done, deleted + gone
        return ReclusterResult(requeued, deleted, len(removal.shrunk))

    async def _plan(self, item_ids: Sequence[str]) -> _Removal:
        owners = await self._store.owners(item_ids)
        removed: dict[str, list[str]] = {}
        unowned: list[str] = []
        for item_id in item_ids:
            if item_id in owners:
                removed.setdefault(owners[item_id], []).append(item_id)
            else:
                unowned.append(item_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            for cluster_id in removed:
                pipe.smembers(self._keys.cluster_items(cluster_id))
            members: list[set[str]] = await pipe.execute()
        partial = {
            cluster_id: leaving
            for (cluster_id, leaving), kept in zip(removed.items(), members, strict=True)
            if kept - set(leaving)
        }
        return _Removal(removed, unowned, await self._shrink(partial))

    async def _shrink(self, partial: dict[str, list[str]]) -> dict[str, ClusterState]:
        """The states of clusters that keep members, minus the leaving items' vectors and counts."""
        if not partial:
            return {}
        assert self._embedder is not None, "only --all may leave clusters untouched by vectors"
        states = await self._store.load(partial)
        leaving = [item_id for cluster_id in states for item_id in partial[cluster_id]]
        hashes = await self._hashes(leaving)
        items = {item.id: item for item in (FeedbackItem.from_hash(h) for h in hashes if h)}
        texts = [embedding_text(items[i]) for i in leaving if i in items]
        vectors = await asyncio.to_thread(self._embedder.embed, texts) if texts else np.zeros((0, 0))
        vector_of = dict(zip([i for i in leaving if i in items], vectors, strict=True))
        for cluster_id, state in states.items():
            for item_id in partial[cluster_id]:
                _forget(state, items.get(item_id), vector_of.get(item_id))
            if state.central_item in partial[cluster_id]:
                remaining = await self._redis.smembers(self._keys.cluster_items(cluster_id))
                state.central_item = min(set(remaining) - set(partial[cluster_id]))
                state.central_score = -1.0  # the next item to join becomes the title item
        return states

    async def _hashes(self, item_ids: Sequence[str]) -> list[dict[str, str]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for item_id in item_ids:
                pipe.hgetall(self._keys.feedback(item_id))
            hashes: list[dict[str, str]] = await pipe.execute()
        return hashes


def _forget(state: ClusterState, item: FeedbackItem | None, vector: np.ndarray | None) -> None:
    """Undo one member's `add`; a member whose hash is gone only leaves the count."""
    state.size -= 1
    if vector is not None:
        state.total = state.total - vector.astype(np.float64)
    if item is not None and state.source_counts.get(item.source, 0) > 0:
        state.source_counts[item.source] -= 1
        if not state.source_counts[item.source]:
            del state.source_counts[item.source]


def _chunks(removal: _Removal) -> Iterator[tuple[dict[str, list[str]], list[str]]]:
    """Whole clusters per chunk (a cluster's removal and its new fields go in one script)."""
    removed: dict[str, list[str]] = {}
    items: list[str] = []
    for cluster_id, leaving in removal.removed.items():
        removed[cluster_id] = leaving
        items += leaving
        if len(items) >= CHUNK_ITEMS:
            yield removed, items
            removed, items = {}, []
    for start in range(0, len(removal.unowned), CHUNK_ITEMS):
        items += removal.unowned[start : start + CHUNK_ITEMS]
        yield removed, items
        removed, items = {}, []
    if items or removed:
        yield removed, items
