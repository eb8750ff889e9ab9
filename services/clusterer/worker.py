"""The clusterer group's batch handler: embed, then assign and write under the lock, then ack.

Per batch: hydrate the items in one round trip (already clustered or deleted ones are simply
acked); embed OUTSIDE the lock in a thread, so replicas embed in parallel; then, holding the
assignment lock, re-check which items are still unclustered, query the index for the batch, assign,
upsert the vectors and write every cluster key in one fenced script; now and then merge clusters
whose centroids converged. Labels are refreshed after the lock is released, because a summarizer
may be a slow remote model. The runtime acks what this returns as not failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from pydantic import ValidationError
from redis.asyncio import Redis

from services.clusterer.assignment import Assignment, BatchItem, ClusterState, assign
from services.clusterer.cluster_store import ClusterStore
from services.clusterer.embedders.base import Embedder
from services.clusterer.lock import RedisLock
from services.clusterer.merging import MergeGroup, plan_merges
from services.clusterer.providers import build_embedder, build_summarizer, build_vector_index
from services.clusterer.summarizers.base import Summarizer
from services.clusterer.thresholds import Profiles, TextKind, profiles_for
from services.clusterer.vector_index.base import Match, VectorIndex, VectorRecord
from shared.consumer import Failures, InvalidPayload, PermanentError, StreamConsumer, StreamMessage
from shared.consumer.config import consumer_config
from shared.keys import CLUSTERER_GROUP, Keys, NewItemField
from shared.models import FeedbackItem, clustering_text
from shared.settings import Settings

log = logging.getLogger(__name__)


def embedding_text(item: FeedbackItem) -> str:
    """The text an item is embedded from; re-clustering must reproduce exactly the same vector."""
    return clustering_text(item.title, item.body or item.raw_text or "")


@dataclass(frozen=True)
class ClusteringOptions:
    profiles: Profiles
    neighbours: int = 10
    merge_interval_seconds: float = 30.0
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
        self._keys = keys
        self._embedder = embedder
        self._index = index
        self._summarizer = summarizer
        self._lock = lock
        self._options = options
        self._store = ClusterStore(redis, keys, lock.key)
        self._touched: set[str] = set()
        self._next_merge = time.monotonic() + options.merge_interval_seconds

    async def __call__(self, messages: Sequence[StreamMessage]) -> Failures:
        failures: dict[str, Exception] = {}
        item_of: dict[str, str] = {}
        for message in messages:
            item_id = message.fields.get(NewItemField.ID, "")
            if item_id:
                item_of[message.id] = item_id
            else:
                failures[message.id] = InvalidPayload("new-item event has no item id")
        items, broken = await self._hydrate(sorted(set(item_of.values())))
        for entry_id, item_id in item_of.items():
            if item_id in broken:
                failures[entry_id] = PermanentError(broken[item_id])
        if items:
            await self._cluster(items)
        trace_items(messages, failures)
        return failures

    async def _hydrate(self, item_ids: Sequence[str]) -> tuple[list[FeedbackItem], dict[str, str]]:
        """Unclustered items to work on, and the ids whose hash cannot be read (with why)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for item_id in item_ids:
                pipe.hgetall(self._keys.feedback(item_id))
            hashes: list[dict[str, str]] = await pipe.execute()
        items, broken = [], {}
        for item_id, fields in zip(item_ids, hashes, strict=True):
            if not fields or fields.get("clustered") == "true":
                continue
            try:
                items.append(FeedbackItem.from_hash(fields))
            except ValidationError as exc:
                broken[item_id] = f"feedback hash is not a valid item: {exc.errors()[0]['msg']}"
        return items, broken

    async def _cluster(self, items: list[FeedbackItem]) -> None:
        texts = [embedding_text(item) for item in items]
        vectors = await asyncio.to_thread(self._embedder.embed, texts)
        now = datetime.now(UTC).isoformat()
        async with self._lock.held(self._options.lock_wait_seconds) as token:
            keep = await self._still_unclustered(items)
            items, vectors = [items[i] for i in keep], vectors[keep]
            if not items:
                return
            assignment = await self._assign(items, vectors, now)
            await self._index.upsert(
                [
                    VectorRecord(i.id, v, assignment.cluster_of[i.id])
                    for i, v in zip(items, vectors, strict=True)
                ]
            )
            await self._store.write(token, assignment, {item.id: item.title for item in items}, now)
            self._touched.update(assignment.clusters)
            changed = dict(assignment.clusters)
            changed.update(await self._maybe_merge(token, now))
        await self._refresh_labels(changed.values(), items, assignment.cluster_of)

    async def _still_unclustered(self, items: Sequence[FeedbackItem]) -> list[int]:
        """Another replica may have clustered some of these while this one was embedding."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.hget(self._keys.feedback(item.id), "clustered")
            flags: list[str | None] = await pipe.execute()
        return [i for i, flag in enumerate(flags) if flag != "true"]

    async def _neighbours(
        self, vectors: np.ndarray, exclude: set[str]
    ) -> tuple[list[list[Match]], dict[str, ClusterState]]:
        """Index matches (minus `exclude`) and the states of the clusters they point at."""
        k = self._options.neighbours
        found = await self._index.query(vectors.astype(np.float32), top_k=k + len(exclude))
        neighbours = [[m for m in matches if m.id not in exclude][:k] for matches in found]
        states = await self._store.load(m.cluster_id for matches in neighbours for m in matches)
        await self._store.resolve(neighbours, states)
        return neighbours, states

    async def _assign(self, items: Sequence[FeedbackItem], vectors: np.ndarray, now: str) -> Assignment:
        # The batch's own items may already be indexed (a crash after the upsert): never match them.
        neighbours, states = await self._neighbours(vectors, {item.id for item in items})
        batch = [BatchItem(item.id, item.source) for item in items]
        return assign(
            batch, vectors, neighbours, states, self._options.profiles, self._options.neighbours, now
        )

    async def _maybe_merge(self, token: str, now: str) -> dict[str, ClusterState]:
        """Every merge interval, merge the clusters changed since the last pass into close neighbours."""
        if not self._options.profiles.merges or time.monotonic() < self._next_merge or not self._touched:
            return {}
        self._next_merge = time.monotonic() + self._options.merge_interval_seconds
        touched = await self._store.load(self._touched)
        self._touched.clear()
        if not touched:
            return {}
        ids = sorted(touched)
        centroids = np.stack([touched[c].total / max(np.linalg.norm(touched[c].total), 1e-12) for c in ids])
        neighbours, states = await self._neighbours(centroids, set())
        states.update(touched)
        pairs = {(c, m.cluster_id) for c, matches in zip(ids, neighbours, strict=True) for m in matches}
        groups = self._plan_merges_by_kind(states, pairs)
        if not groups:
            return {}
        moved = await self._store.merge(token, groups, now)
        for group, item_ids in zip(groups, moved, strict=True):
            await self._index.reassign(item_ids, group.target)
        log.info("merged clusters", extra={"merges": sum(len(g.absorbed) for g in groups)})
        return {group.target: group.state for group in groups}

    def _plan_merges_by_kind(
        self, states: dict[str, ClusterState], pairs: set[tuple[str, str]]
    ) -> list[MergeGroup]:
        """Clusters merge only with clusters of their own kind, at that kind's threshold; a merge of
        two same-kind clusters keeps the kind, so planning each kind apart is the whole rule."""
        profiles = self._options.profiles
        kind_of = {cid: profiles.kind_of(state.source_counts) for cid, state in states.items()}
        groups: list[MergeGroup] = []
        for kind in TextKind:
            threshold = profiles.of(kind).merge
            if threshold > 0:
                same_kind = {(a, b) for a, b in pairs if kind_of.get(a) is kind and kind_of.get(b) is kind}
                groups.extend(plan_merges(states, same_kind, threshold))
        return groups

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
    settings: Settings, redis: Redis, keys: Keys, embedder: Embedder | None = None
) -> ClusterWorker:
    """The worker with the providers the settings name; tests pass their own embedder."""
    embedder = embedder or build_embedder(settings)
    return ClusterWorker(
        redis,
        keys,
        embedder,
        build_vector_index(settings, redis, keys, embedder),
        build_summarizer(settings),
        RedisLock(redis, keys.cluster_lock, settings.cluster_lock_ttl_ms),
        ClusteringOptions(
            profiles=profiles_for(settings),
            neighbours=settings.cluster_neighbours,
            merge_interval_seconds=settings.cluster_merge_interval_seconds,
        ),
    )


def build_clusterer_consumer(
    settings: Settings, redis: Redis, keys: Keys, embedder: Embedder | None = None
) -> StreamConsumer:
    config = consumer_config(
        settings,
        keys,
        stream=keys.new_item_stream,
        group=CLUSTERER_GROUP,
        batch_size=settings.clusterer_batch_size,
    )
    return StreamConsumer(redis, config, build_cluster_worker(settings, redis, keys, embedder))
