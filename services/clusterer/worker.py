"""The clusterer group's batch handler: embed, then assign and write under the lock, then ack.

Per batch: hydrate the items and their clusters in the authority (`cluster:of`) in one round trip
(deleted items, and clustered ones whose hash already mirrors their cluster, are simply acked);
embed OUTSIDE the lock in a thread, so replicas embed in parallel; then, holding the assignment
lock, re-read the authority (another replica may have clustered some meanwhile), query the index
for the batch, read the neighbours' current clusters from the authority (a consolidation pass may
have moved them), assign by neighbour vote, upsert the vectors, append the batch's neighbour edges
to the graph (one entry per kind of text), write every cluster key and the authority in one fenced
script, then mirror each item's cluster onto its hash in its partition (one keyed script per
partition). A crash before the mirror leaves the batch pending; its redelivery finds the items in
the authority, keeps their clusters and redoes the mirror. One worker serves the consumers of every
partition a process owns; their batches serialise on the lock. The consolidation pass
(services/clusterer/consolidation.py) later corrects the clusters from the graph. Labels are
refreshed after the lock is released, because a summarizer may be a slow remote model. The
runtime acks what this returns as not failed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from pydantic import ValidationError
from redis.asyncio import Redis

from services.clusterer.assignment import Assignment, BatchItem, ClusterState, assign
from services.clusterer.cluster_store import ClusterStore
from services.clusterer.embedders.base import Embedder
from services.clusterer.fingerprints import error_fingerprint
from services.clusterer.lock import RedisLock
from services.clusterer.neighbour_graph import append_edges
from services.clusterer.providers import build_embedder, build_summarizer, build_vector_index
from services.clusterer.summarizers.base import Summarizer
from services.clusterer.thresholds import Profiles, profiles_for
from services.clusterer.vector_index.base import Match, VectorIndex, VectorRecord
from shared.consumer import Failures, InvalidPayload, PermanentError, StreamConsumer, StreamMessage
from shared.consumer.config import consumer_config
from shared.keys import CLUSTERER_GROUP, Keys, NewItemField
from shared.models import FeedbackItem, clustering_text
from shared.redis_connection import binary_twin
from shared.settings import Settings

log = logging.getLogger(__name__)


def embedding_text(item: FeedbackItem) -> str:
    """The text an item is embedded from; re-clustering must reproduce exactly the same vector."""
    return clustering_text(item.title, item.body or item.raw_text or "")


@dataclass(frozen=True)
class ClusteringOptions:
    profiles: Profiles
    neighbours: int = 10
    lock_wait_seconds: float = 60.0


class ClusterWorker:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        embedder: Embedder,
        index: VectorIndex,
        summarizer: Summarizer,
        lock: RedisLock,
        options: ClusteringOptions,
    ) -> None:
        self._redis = redis
        self._binary = binary_twin(redis)
        self._keys = keys
        self._embedder = embedder
        self._index = index
        self._summarizer = summarizer
        self._lock = lock
        self._options = options
        self._store = ClusterStore(redis, keys, lock.key)

    async def __call__(self, messages: Sequence[StreamMessage]) -> Failures:
        failures: dict[str, Exception] = {}
        item_of: dict[str, str] = {}
        for message in messages:
            item_id = message.fields.get(NewItemField.ID, "")
            if item_id:
                item_of[message.id] = item_id
            else:
                failures[message.id] = InvalidPayload("new-item event has no item id")
        items, unmirrored, broken = await self._hydrate(sorted(set(item_of.values())))
        for entry_id, item_id in item_of.items():
            if item_id in broken:
                failures[entry_id] = PermanentError(broken[item_id])
        if items or unmirrored:
            await self._cluster(items, unmirrored)
        trace_items(messages, failures)
        return failures

    async def _hydrate(self, item_ids: Sequence[str]) -> tuple[list[FeedbackItem], list[str], dict[str, str]]:
        """Items the authority has no cluster for (to assign), ids whose hash does not mirror the
        cluster the authority names (a crash before the mirror: redo it), and the ids whose hash
        cannot be read (with why). Deleted items are none of these: their events are simply acked."""
        if not item_ids:
            return [], [], {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for item_id in item_ids:
                pipe.hgetall(self._keys.feedback(item_id))
            pipe.hmget(self._keys.cluster_of, item_ids)
            *hashes, clusters = await pipe.execute()
        owners = {item_id: owner for item_id, owner in zip(item_ids, clusters, strict=True) if owner}
        items: list[FeedbackItem] = []
        unmirrored: list[str] = []
        broken: dict[str, str] = {}
        for item_id, fields in zip(item_ids, hashes, strict=True):
            if not fields:
                continue
            if item_id in owners:
                if (fields.get("clustered"), fields.get("cluster_id")) != ("true", owners[item_id]):
                    unmirrored.append(item_id)
                continue
            try:
                items.append(FeedbackItem.from_hash(fields))
            except ValidationError as exc:
                broken[item_id] = f"feedback hash is not a valid item: {exc.errors()[0]['msg']}"
        return items, unmirrored, broken

    async def _cluster(self, items: list[FeedbackItem], unmirrored: list[str]) -> None:
        """Under the lock, the authority is read again (another replica may have clustered some
        items while this one was embedding): those keep their cluster, the rest are assigned, and
        every one of them is mirrored onto its hash before the lock is released (so no pass can
        move an item between this batch's write and its mirror)."""
        vectors = (
            await asyncio.to_thread(self._embedder.embed, [embedding_text(i) for i in items])
            if items
            else None
        )
        now = datetime.now(UTC).isoformat()
        assignment = None
        async with self._lock.held(self._options.lock_wait_seconds) as token:
            owners = await self._store.owners([*unmirrored, *(item.id for item in items)])
            keep = [i for i, item in enumerate(items) if item.id not in owners]
            items = [items[i] for i in keep]
            if items and vectors is not None:
                assignment = await self._assign_and_write(token, items, vectors[keep], now)
                owners.update(assignment.cluster_of)
            await self._store.mirror(owners)
        if assignment is not None:
            await self._refresh_labels(assignment.clusters.values(), items, assignment.cluster_of)

    async def _assign_and_write(
        self, token: str, items: list[FeedbackItem], vectors: np.ndarray, now: str
    ) -> Assignment:
        assignment = await self._assign(items, vectors, now)
        await self._index.upsert(
            [VectorRecord(i.id, v, assignment.cluster_of[i.id]) for i, v in zip(items, vectors, strict=True)]
        )
        # Edges before the cluster write: a crash in between re-sends them (the replica keeps
        # the first copy), where the other order could leave a clustered item without edges.
        for kind, edges in assignment.edges.items():
            await append_edges(self._binary, self._keys.neighbour_graph(self._embedder.name, kind), edges)
        await self._store.write(token, assignment, {item.id: item.title for item in items}, now)
        return assignment

    async def _neighbours(
        self, vectors: np.ndarray, exclude: set[str]
    ) -> tuple[list[list[Match]], dict[str, ClusterState]]:
        """Index matches (minus `exclude`), each naming its item's CURRENT cluster from the authority
        (`cluster:of`: the index's copy is stale once a pass moves items), and the states of
        those clusters. Matches whose item is not clustered (any more) are dropped."""
        k = self._options.neighbours
        found = await self._index.query(vectors.astype(np.float32), top_k=k + len(exclude))
        matches = [[m for m in row if m.id not in exclude][:k] for row in found]
        owners = await self._store.owners(sorted({m.id for row in matches for m in row}))
        neighbours = [[Match(m.id, m.score, owners[m.id]) for m in row if m.id in owners] for row in matches]
        states = await self._store.load(owners.values())
        return neighbours, states

    async def _assign(self, items: Sequence[FeedbackItem], vectors: np.ndarray, now: str) -> Assignment:
        # The batch's own items may already be indexed (a crash after the upsert): never match them.
        neighbours, states = await self._neighbours(vectors, {item.id for item in items})
        machine = self._options.profiles.machine_sources
        batch = [
            BatchItem(
                item.id,
                item.source,
                error_fingerprint(item.source, item.title, item.body, item.metadata, error_sources=machine),
            )
            for item in items
        ]
        groups = await self._error_groups({b.fingerprint for b in batch if b.fingerprint}, states)
        return assign(
            batch, vectors, neighbours, states, self._options.profiles, self._options.neighbours, now, groups
        )

    async def _error_groups(self, fingerprints: set[str], states: dict[str, ClusterState]) -> dict[str, str]:
        """Each known fingerprint's cluster: the current cluster of the first item that had it
        (loaded into `states`). One round trip each for the keys, the owners and the states."""
        if not fingerprints:
            return {}
        ordered = sorted(fingerprints)
        firsts = await self._redis.mget([self._keys.error_group(f) for f in ordered])
        owners = await self._store.owners([first for first in firsts if first])
        groups = {f: owners[first] for f, first in zip(ordered, firsts, strict=True) if first in owners}
        states.update(await self._store.load(set(groups.values()) - set(states)))
        return {f: cluster_id for f, cluster_id in groups.items() if cluster_id in states}

    async def _refresh_labels(
        self, clusters: Iterable[ClusterState], batch: Sequence[FeedbackItem], cluster_of: dict[str, str]
    ) -> None:
        """Best effort: a failing summarizer keeps the previous label; the items are clustered anyway.
        The summarizer sees the central item first, then this batch's newcomers."""
        known = {item.id: item for item in batch}
        states = list(clusters)
        missing = sorted({s.central_item for s in states} - set(known))
        async with self._redis.pipeline(transaction=False) as pipe:
            for item_id in missing:
                pipe.hgetall(self._keys.feedback(item_id))
            for fields in await pipe.execute():
                if fields:
                    known[fields["id"]] = FeedbackItem.from_hash(fields)
        for state in states:
            central = known.get(state.central_item)
            newcomers = [i for i in batch if cluster_of.get(i.id) == state.id and i.id != state.central_item]
            try:
                label = await self._summarizer.summarize(
                    [central, *newcomers] if central else newcomers, state.source_counts
                )
            except Exception:
                log.exception("summarizer failed; keeping the previous label", extra={"cluster_id": state.id})
                continue
            await self._store.set_label(state.id, label)


def trace_items(messages: Sequence[StreamMessage], failures: Failures) -> None:
    """Per item at DEBUG, with the ingest event and request ids that trace it back to the API."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    for message in messages:
        fields = message.fields
        log.debug(
            "new-item event %s",
            "failed" if message.id in failures else "handled",
            extra={
                "feedback_id": fields.get(NewItemField.ID, ""),
                "event_id": fields.get(NewItemField.EVENT_ID, ""),
                "request_id": fields.get(NewItemField.REQUEST_ID, ""),
            },
        )


def build_cluster_worker(
    settings: Settings,
    redis: Redis,
    keys: Keys,
    embedder: Embedder | None = None,
    index: VectorIndex | None = None,
) -> ClusterWorker:
    """The worker with the providers the settings name; tests pass their own embedder, and a
    clusterer process shares its embedder and index with its consolidation passes."""
    embedder = embedder or build_embedder(settings)
    return ClusterWorker(
        redis,
        keys,
        embedder,
        index or build_vector_index(settings, redis, keys, embedder),
        build_summarizer(settings),
        RedisLock(redis, keys.cluster_lock, settings.cluster_lock_ttl_ms),
        ClusteringOptions(
            profiles=profiles_for(settings),
            neighbours=settings.cluster_neighbours,
        ),
    )


def build_clusterer_consumer(
    settings: Settings,
    redis: Redis,
    keys: Keys,
    embedder: Embedder | None = None,
    index: VectorIndex | None = None,
    worker: ClusterWorker | None = None,
) -> StreamConsumer:
    """The consumer of the new-item stream of `keys`' partition; `worker` lets several partitions'
    consumers share one worker (one embedder, index and lock)."""
    config = consumer_config(
        settings,
        keys,
        stream=keys.new_item_stream,
        group=CLUSTERER_GROUP,
        batch_size=settings.clusterer_batch_size,
    )
    return StreamConsumer(
        redis, config, worker or build_cluster_worker(settings, redis, keys, embedder, index)
    )


def build_clusterer_consumers(
    settings: Settings,
    redis: Redis,
    keys: Keys,
    embedder: Embedder | None = None,
    index: VectorIndex | None = None,
) -> list[StreamConsumer]:
    """One consumer per partition this process owns, all handing their batches to one worker."""
    worker = build_cluster_worker(settings, redis, keys, embedder, index)
    return [
        build_clusterer_consumer(settings, redis, keys.partition(i), worker=worker)
        for i in settings.owned_partitions
    ]
