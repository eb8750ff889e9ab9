"""The neighbour graph: each item's edges to its nearest earlier items, a by-product of assignment.

Assignment already queries every item's top-k neighbours; keeping them as cosine-weighted edges
lets the consolidation pass find communities without querying the vector index again. The graph
is stored like the default vector index: an append-only Redis stream per embedder and kind of
text, ONE entry per batch (one XADD, whatever the batch size), so any replica replays the same
graph and a restart loses nothing. An entry lists the batch's items (also those without a
neighbour) and their edges. An item's edges are written when it is assigned; a retried batch
writes them again and the replica keeps the first copy, so writing is idempotent.

On arrival an item can only link to EARLIER items, so the first items of a topic get poor edges.
The first pass after an item's arrival therefore refreshes it: it adds the item's edges to the
neighbours that arrived LATER (a "refresh" entry, also kept once per item). A pair that both sides
chose counts twice, which is how a mutual neighbour should weigh.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from redis.asyncio import Redis

PAGE = 200
_NODES, _SOURCES, _TARGETS, _WEIGHTS = b"nodes", b"sources", b"targets", b"weights"
_REFRESH = b"refresh"
_SEPARATOR = "\n"
START = "0-0"


@dataclass
class BatchEdges:
    """One batch's items and edges (source item -> neighbour item, raw cosine)."""

    nodes: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    refresh: bool = False  # edges to later neighbours, added by a pass

    def add(self, source: str, target: str, weight: float) -> None:
        self.sources.append(source)
        self.targets.append(target)
        self.weights.append(weight)


async def append_edges(redis: Redis, log_key: str, edges: BatchEdges) -> None:
    """`redis` must not decode replies (the weights are raw float32)."""
    if not edges.nodes:
        return
    fields: dict[bytes, bytes] = {
        _NODES: _SEPARATOR.join(edges.nodes).encode(),
        _SOURCES: _SEPARATOR.join(edges.sources).encode(),
        _TARGETS: _SEPARATOR.join(edges.targets).encode(),
        _WEIGHTS: np.asarray(edges.weights, dtype=np.float32).tobytes(),
        _REFRESH: b"1" if edges.refresh else b"",
    }
    await redis.xadd(log_key, fields)  # type: ignore[arg-type]


class _Growing:
    """A numpy column grown by doubling, so appends stay amortised O(1)."""

    def __init__(self, dtype: type[np.generic]) -> None:
        self._data = np.zeros(1024, dtype=dtype)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        while self.size + len(values) > len(self._data):
            self._data = np.concatenate([self._data, np.zeros_like(self._data)])
        self._data[self.size : self.size + len(values)] = values
        self.size += len(values)

    @property
    def values(self) -> np.ndarray:
        return self._data[: self.size]


class GraphReplica:
    """This process's copy of one graph log: nodes numbered in log order, and edge columns."""

    def __init__(self, redis: Redis, log_key: str) -> None:
        self._redis = redis
        self.key = log_key
        self.row: dict[str, int] = {}
        self.ids: list[str] = []
        self.sources = _Growing(np.int32)
        self.targets = _Growing(np.int32)
        self.weights = _Growing(np.float32)
        self._has_edges: set[int] = set()
        self.refreshed: set[int] = set()
        self._entry_keys: list[tuple[int, int]] = []  # every entry's id, in log order
        self._first_rows: list[int] = []  # the number of nodes known before each entry
        self.last_entry = START.encode()
        self._sync_lock = asyncio.Lock()

    async def sync(self) -> None:
        """Apply every entry written since the last sync (by any replica)."""
        async with self._sync_lock:
            while True:
                entries = await self._redis.xrange(self.key, min=b"(" + self.last_entry, count=PAGE)
                for entry_id, fields in entries:
                    self._entry_keys.append(_entry_key(entry_id))
                    self._first_rows.append(len(self.ids))
                    self._apply(fields)
                    self.last_entry = entry_id
                if len(entries) < PAGE:
                    return

    def nodes_after(self, entry_id: str) -> range:
        """Rows of the nodes first listed after `entry_id` (nodes are numbered in log order)."""
        position = bisect.bisect_right(self._entry_keys, _entry_key(entry_id.encode()))
        first_row = self._first_rows[position] if position < len(self._first_rows) else len(self.ids)
        return range(first_row, len(self.ids))

    def degrees(self) -> np.ndarray:
        """Weighted degree of every node (each edge counts at both ends)."""
        count = len(self.ids)
        return np.bincount(self.sources.values, self.weights.values, count) + np.bincount(
            self.targets.values, self.weights.values, count
        )

    def _node(self, item_id: str) -> int:
        row = self.row.get(item_id)
        if row is None:
            row = self.row[item_id] = len(self.ids)
            self.ids.append(item_id)
        return row

    def _apply(self, fields: dict[bytes, bytes]) -> None:
        nodes = [self._node(item_id) for item_id in fields[_NODES].decode().split(_SEPARATOR)]
        seen = self.refreshed if fields.get(_REFRESH) else self._has_edges
        fresh = {node for node in nodes if node not in seen}
        seen.update(fresh)
        if not fields[_SOURCES]:
            return
        sources = [self._node(i) for i in fields[_SOURCES].decode().split(_SEPARATOR)]
        targets = [self._node(i) for i in fields[_TARGETS].decode().split(_SEPARATOR)]
        weights = np.frombuffer(fields[_WEIGHTS], dtype=np.float32)
        keep = [i for i, source in enumerate(sources) if source in fresh]
        self.sources.extend(np.asarray(sources, dtype=np.int32)[keep])
        self.targets.extend(np.asarray(targets, dtype=np.int32)[keep])
        self.weights.extend(weights[keep])


def _entry_key(entry_id: bytes) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition(b"-")
    return int(milliseconds), int(sequence or 0)


def neighbour_rows(replica: GraphReplica, rows: Sequence[int] | range) -> np.ndarray:
    """`rows` and every node sharing an edge with one of them."""
    marked = np.zeros(len(replica.ids), dtype=bool)
    marked[np.asarray(rows, dtype=np.int64)] = True
    sources, targets = replica.sources.values, replica.targets.values
    touching = marked[sources] | marked[targets]
    marked[sources[touching]] = True
    marked[targets[touching]] = True
    return np.flatnonzero(marked)
