"""Reading cluster state for assignment and writing its results.

Cluster state lives in the clusterer's one slot (`{clusters}` when tagged): the clusters, their
indexes and `cluster:of`, the item -> cluster authority, each write one fenced Lua script whose keys
are all declared. Items live in their partitions' slots, so their `clustered`/`cluster_id` fields and
the unclustered sets are a mirror written after the fenced write, one small keyed script per
partition; a crash in between leaves the batch pending, and its redelivery finds the items in the
authority and redoes the mirror.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
from redis.asyncio import Redis

from services.clusterer.assignment import Assignment, ClusterState
from services.clusterer.summarizers.base import ClusterLabel
from shared.clusters import NEW_STATUS, ClusterField
from shared.keys import SCHEMA_VERSION, Keys, NewItemField

_SCRIPTS = Path(__file__).with_name("scripts")
_STATE_FIELDS = [
    ClusterField.CENTROID_B64,
    ClusterField.SIZE,
    ClusterField.CENTRAL_ITEM,
    ClusterField.CENTRAL_SCORE,
    ClusterField.SOURCE_COUNTS,
    ClusterField.CREATED_AT,
]
CENTROID_DECIMALS = 6
MIRROR_CHUNK = 1000
OWNERS_CHUNK = 10_000


def _decode_vector(encoded: str) -> np.ndarray:
    """Parsing the JSON centroid was most of a batch's time with many clusters; this is ~20x faster."""
    return np.frombuffer(base64.b64decode(encoded), dtype=np.float32).astype(np.float64)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _initial_fields(state: ClusterState, titles: dict[str, str], now: str) -> dict[str, str]:
    """Written only when the cluster hash is new: a later write never overwrites a label."""
    return {
        ClusterField.ID: state.id,
        ClusterField.TITLE: titles.get(state.central_item, ""),
        ClusterField.SUMMARY: "",
        ClusterField.STATUS: NEW_STATUS,
        ClusterField.CREATED_AT: state.created_at or now,
    }


def _state_fields(state: ClusterState, now: str) -> dict[str, str]:
    """The fields an assignment or merge rewrites; `size` comes from SCARD inside the script."""
    return {
        ClusterField.UPDATED_AT: now,
        ClusterField.SOURCES: json.dumps(sorted(state.source_counts)),
        ClusterField.SOURCE_COUNTS: json.dumps(state.source_counts, sort_keys=True),
        ClusterField.CENTROID: json.dumps(np.round(state.centroid, CENTROID_DECIMALS).tolist()),
        ClusterField.CENTROID_B64: base64.b64encode(state.centroid.astype(np.float32).tobytes()).decode(),
        ClusterField.CENTRAL_ITEM: state.central_item,
        ClusterField.CENTRAL_SCORE: repr(state.central_score),
    }


def cluster_script(name: str) -> str:
    """A cluster-writing script with the shared prelude (lock fence, cluster writes) in front."""
    return (_SCRIPTS / "cluster_keys.lua").read_text() + (_SCRIPTS / name).read_text()


class DeclaredKeys:
    """The KEYS of one cluster script: the fixed ones first, then each other key once, named in
    the script's document by its position (a cluster routes a script by KEYS and refuses any key
    it does not declare)."""

    def __init__(self, fixed: Sequence[str]) -> None:
        self.keys: list[str] = []
        self._position: dict[str, int] = {}
        for key in fixed:
            self(key)

    def __call__(self, key: str) -> int:
        if key not in self._position:
            self.keys.append(key)
            self._position[key] = len(self.keys)
        return self._position[key]


class ClusterStore:
    def __init__(self, redis: Redis, keys: Keys, lock_key: str) -> None:
        self._redis = redis
        self._keys = keys
        self._lock_key = lock_key
        self._write = redis.register_script(cluster_script("write_assignment.lua"))
        self._set_label = redis.register_script((_SCRIPTS / "set_label.lua").read_text())
        self._set_keywords = redis.register_script((_SCRIPTS / "set_keywords.lua").read_text())
        self._unassign = redis.register_script(cluster_script("unassign_items.lua"))
        self._commit_pass = redis.register_script(cluster_script("commit_pass.lua"))
        self._mirror = redis.register_script((_SCRIPTS / "mirror_items.lua").read_text())
        self._requeue = redis.register_script((_SCRIPTS / "requeue_items.lua").read_text())

    async def load(self, cluster_ids: Iterable[str]) -> dict[str, ClusterState]:
        """States of the clusters that still exist, in one round trip."""
        ids = sorted(set(cluster_ids))
        async with self._redis.pipeline(transaction=False) as pipe:
            for cluster_id in ids:
                pipe.hmget(self._keys.cluster(cluster_id), _STATE_FIELDS)
            rows: list[list[str | None]] = await pipe.execute()
        states = {}
        for cluster_id, (centroid, size, central, score, counts, created) in zip(ids, rows, strict=True):
            if centroid is None or size is None:
                continue
            states[cluster_id] = ClusterState(
                id=cluster_id,
                total=_decode_vector(centroid) * int(size),
                size=int(size),
                central_item=central or "",
                central_score=float(score or 0.0),
                source_counts=json.loads(counts or "{}"),
                created_at=created or "",
            )
        return states

    async def adopt_clusters(self) -> int:
        """Clusters written before the authority existed: fill `cluster:of` from their member sets
        (the caller holds the lock). A no-op once it exists. Returns how many items it adopted."""
        if await self._redis.exists(self._keys.cluster_of):
            return 0
        cluster_ids = sorted(await self._redis.smembers(self._keys.clusters_all))
        adopted = 0
        for cluster_id, members in zip(cluster_ids, await self.members(cluster_ids), strict=True):
            if members:
                await self._redis.hset(self._keys.cluster_of, mapping=dict.fromkeys(members, cluster_id))
                adopted += len(members)
        return adopted

    async def owners(self, item_ids: Sequence[str]) -> dict[str, str]:
        """Each clustered item's cluster, from the authority (`cluster:of`), one HMGET per chunk."""
        owners: dict[str, str] = {}
        for start in range(0, len(item_ids), OWNERS_CHUNK):
            chunk = item_ids[start : start + OWNERS_CHUNK]
            found: list[str | None] = await self._redis.hmget(self._keys.cluster_of, chunk)
            owners.update((item_id, owner) for item_id, owner in zip(chunk, found, strict=True) if owner)
        return owners

    async def write(self, token: str, assignment: Assignment, titles: dict[str, str], now: str) -> None:
        """`titles` gives each item's title, the provisional label of a cluster it seeds. Writes
        the cluster state only: the caller mirrors `assignment.cluster_of` onto the items next."""
        members: dict[str, list[str]] = {}
        for item_id, cluster_id in assignment.cluster_of.items():
            members.setdefault(cluster_id, []).append(item_id)
        declared = DeclaredKeys(self._fixed_keys())
        doc = {
            "token": token,
            "clusters": [
                {**self._cluster_doc(declared, state, titles, now), "items": members[cluster_id]}
                for cluster_id, state in assignment.clusters.items()
            ],
            "items": [
                {"id": item_id, "cluster": cluster_id}
                for item_id, cluster_id in assignment.cluster_of.items()
            ],
            "groups": [
                {"key": declared(self._keys.error_group(fingerprint)), "item": item_id}
                for fingerprint, item_id in sorted(assignment.first_with.items())
            ],
        }
        await self._write(keys=declared.keys, args=[json.dumps(doc)])

    async def mirror(self, cluster_of: Mapping[str, str]) -> None:
        """Make each item's hash say its cluster and take it out of its partition's unclustered set:
        one keyed script per partition and chunk, the partitions in parallel."""
        by_partition: dict[int, list[str]] = {}
        for item_id in sorted(cluster_of):
            by_partition.setdefault(self._keys.partitioning.of(item_id), []).append(item_id)
        calls = []
        for partition, item_ids in by_partition.items():
            keys = self._keys.partition(partition)
            for start in range(0, len(item_ids), MIRROR_CHUNK):
                chunk = item_ids[start : start + MIRROR_CHUNK]
                calls.append(
                    self._mirror(
                        keys=[keys.unclustered, *(keys.feedback(i) for i in chunk)],
                        args=[value for i in chunk for value in (i, cluster_of[i])],
                    )
                )
        await asyncio.gather(*calls)

    def _cluster_doc(
        self, declared: DeclaredKeys, state: ClusterState, titles: dict[str, str], now: str
    ) -> dict[str, object]:
        return {
            **self._ref(declared, state.id),
            "fields": _state_fields(state, now),
            "initial": _initial_fields(state, titles, now),
            "created_score": _epoch(state.created_at or now),
        }

    async def unassign(
        self,
        token: str,
        removed: dict[str, list[str]],
        shrunk: dict[str, ClusterState],
        item_ids: list[str],
        now: str,
    ) -> tuple[int, int]:
        """Re-enqueue `item_ids` in their partitions, then take `removed[cluster]` out of each
        cluster and the authority (deleting clusters left empty; `shrunk` holds the recomputed state
        of the others). Returns (re-enqueued, deleted)."""
        requeued = await self.requeue(item_ids)
        declared = DeclaredKeys(self._fixed_keys())
        doc = {
            "token": token,
            "clusters": [
                {
                    **self._ref(declared, cluster_id),
                    "remove": items,
                    "fields": _state_fields(shrunk[cluster_id], now) if cluster_id in shrunk else {},
                }
                for cluster_id, items in removed.items()
            ],
            "items": item_ids,
        }
        deleted = await self._unassign(keys=declared.keys, args=[json.dumps(doc)])
        return requeued, int(deleted)

    async def requeue(self, item_ids: Sequence[str]) -> int:
        """Mark the items unclustered with a fresh new-item event, per partition, atomically each."""
        by_partition: dict[int, list[str]] = {}
        for item_id in item_ids:
            by_partition.setdefault(self._keys.partitioning.of(item_id), []).append(item_id)
        calls = []
        for partition, ids in by_partition.items():
            keys = self._keys.partition(partition)
            doc = {
                "version": SCHEMA_VERSION,
                "event_fields": {
                    "version": NewItemField.VERSION,
                    "id": NewItemField.ID,
                    "source": NewItemField.SOURCE,
                    "created_at": NewItemField.CREATED_AT,
                },
                "items": ids,
            }
            calls.append(
                self._requeue(
                    keys=[keys.unclustered, keys.new_item_stream, *(keys.feedback(i) for i in ids)],
                    args=[json.dumps(doc)],
                )
            )
        return sum(int(done) for done in await asyncio.gather(*calls))

    async def members(self, cluster_ids: Sequence[str]) -> list[set[str]]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for cluster_id in cluster_ids:
                pipe.smembers(self._keys.cluster_items(cluster_id))
            found: list[set[str]] = await pipe.execute()
        return found

    async def commit_pass(
        self,
        token: str,
        cursor: tuple[str, str],
        moves: Sequence[tuple[str, str, str]],
        states: Sequence[ClusterState],
        gone: Sequence[str],
        titles: dict[str, str],
        now: str,
    ) -> tuple[int, int]:
        """Move `(item, from, to)`, rewrite `states`, delete the `gone` clusters left empty and set
        the pass cursor `(key, entry id)`, in one fenced script, then mirror the moved items' new
        clusters (read back from the authority) onto their hashes; a new cluster is titled after
        its central item until the summarizer labels it. Returns (moved, deleted)."""
        declared = DeclaredKeys([*self._fixed_keys(), cursor[0]])
        doc = {
            "token": token,
            "cursor": cursor[1],
            "moves": [
                {
                    "id": item_id,
                    "from_items": declared(self._keys.cluster_items(source)),
                    "to": target,
                    "to_items": declared(self._keys.cluster_items(target)),
                }
                for item_id, source, target in moves
            ],
            "clusters": [self._cluster_doc(declared, state, titles, now) for state in states],
            "gone": [self._ref(declared, cluster_id) for cluster_id in gone],
        }
        moved, deleted = await self._commit_pass(keys=declared.keys, args=[json.dumps(doc)])
        await self.mirror(await self.owners([item_id for item_id, _, _ in moves]))
        return int(moved), int(deleted)

    async def set_label(self, cluster_id: str, label: ClusterLabel) -> None:
        await self._set_label(keys=[self._keys.cluster(cluster_id)], args=[label.title, label.summary])

    async def set_keywords(self, keywords: dict[str, list[str]]) -> None:
        """One script for every cluster: their keys share the clusterer's slot."""
        if keywords:
            await self._set_keywords(
                keys=[self._keys.cluster(cluster_id) for cluster_id in keywords],
                args=[json.dumps(words) for words in keywords.values()],
            )

    def _ref(self, declared: DeclaredKeys, cluster_id: str) -> dict[str, str | int]:
        return {
            "id": cluster_id,
            "key": declared(self._keys.cluster(cluster_id)),
            "items_key": declared(self._keys.cluster_items(cluster_id)),
        }

    def _fixed_keys(self) -> list[str]:
        """KEYS[1..5] of every cluster script, in the prelude's order."""
        return [
            self._lock_key,
            self._keys.clusters_all,
            self._keys.clusters_by_size,
            self._keys.clusters_by_created,
            self._keys.cluster_of,
        ]
