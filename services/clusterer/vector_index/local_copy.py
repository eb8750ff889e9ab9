"""A replica's in-process copy of the vector log: exact rows while small, an HNSW graph once large.

Below `ann_min` items one matrix product is exact and fast enough (section 2 of docs/scaling.md);
above it, an hnswlib graph (M=16, ef_construction=100) keeps a batch's search far below the time
it took to embed the batch, at a recall of about 0.97 at 100k. Scores are raw inner products (the
graph uses hnswlib's "ip" space, distance `1 - dot`), equal to cosine for unit vectors, exactly as
the matrix product gives them. Each item id has an int row (the graph's label) and a cluster id in
side tables, so a reassignment touches only the side table.

Not thread-safe: the caller serialises every call (the graph is grown and searched from threads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import hnswlib
import numpy as np

from services.clusterer.vector_index.base import Match

GRAPH_LINKS = 16  # hnswlib's M
GRAPH_BUILD_EF = 100  # hnswlib's ef_construction
_SEPARATOR = "\n"
EXACT, GRAPH = "exact", "hnsw"


@dataclass(frozen=True)
class IndexTuning:
    """Where the copy switches to the graph and how wide the graph searches (VECTOR_* settings)."""

    ann_min: int = 20_000
    search_ef: int = 128


@dataclass(frozen=True)
class CopyImage:
    """Everything needed to rebuild a copy elsewhere: its side tables, and its storage in a file
    (hnswlib saves and loads only files; a file also spares holding the bytes in memory)."""

    storage: str  # EXACT (float32 rows) or GRAPH (an hnswlib index file)
    ids: bytes
    clusters: bytes
    payload: Path
    payload_bytes: int


class _ExactRows:
    """Float32 rows grown by doubling, so appends stay amortised O(1)."""

    def __init__(self, dimensions: int, rows: np.ndarray | None = None) -> None:
        self.matrix = np.zeros((1024, dimensions), dtype=np.float32)
        if rows is not None:
            self.matrix = np.concatenate([rows, np.zeros((max(1024, len(rows)), dimensions), np.float32)])

    def put(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        needed = int(rows.max()) + 1
        while needed > len(self.matrix):
            self.matrix = np.concatenate([self.matrix, np.zeros_like(self.matrix)])
        self.matrix[rows] = vectors

    def search(self, queries: np.ndarray, k: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        scores = queries @ self.matrix[:count].T
        best = (
            np.argpartition(-scores, k - 1, axis=1)[:, :k]
            if k < count
            else np.tile(np.arange(count), (len(scores), 1))
        )
        best_scores = np.take_along_axis(scores, best, axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")
        return np.take_along_axis(best, order, axis=1), np.take_along_axis(best_scores, order, axis=1)

    def get(self, rows: Sequence[int]) -> np.ndarray:
        return self.matrix[list(rows)].copy()


class _Graph:
    """An hnswlib graph whose labels are the side tables' rows; it also holds the vectors."""

    def __init__(self, index: hnswlib.Index, search_ef: int) -> None:
        self.index = index
        self.search_ef = search_ef

    @classmethod
    def empty(cls, dimensions: int, capacity: int, search_ef: int) -> _Graph:
        index = hnswlib.Index(space="ip", dim=dimensions)
        index.init_index(max_elements=capacity, M=GRAPH_LINKS, ef_construction=GRAPH_BUILD_EF)
        return cls(index, search_ef)

    def put(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """An existing label's vector is replaced in place (hnswlib repairs its links)."""
        needed = int(rows.max()) + 1
        if needed > self.index.get_max_elements():
            self.index.resize_index(max(needed, 2 * self.index.get_max_elements()))
        self.index.add_items(vectors, rows)

    def search(self, queries: np.ndarray, k: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        self.index.set_ef(max(self.search_ef, k))
        labels, distances = self.index.knn_query(queries, k=min(k, count))
        return labels.astype(np.int64), 1.0 - distances

    def get(self, rows: Sequence[int]) -> np.ndarray:
        found: np.ndarray = self.index.get_items(list(rows), return_type="numpy")
        return found.astype(np.float32, copy=False)


class LocalCopy:
    """Item id <-> row and row -> cluster id, beside the rows' vectors (exact or graph)."""

    def __init__(self, dimensions: int, tuning: IndexTuning) -> None:
        self.dimensions = dimensions
        self.tuning = tuning
        self.rows: dict[str, int] = {}
        self.ids: list[str] = []
        self.cluster_of: list[str] = []
        self.storage: _ExactRows | _Graph = _ExactRows(dimensions)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def uses_graph(self) -> bool:
        return isinstance(self.storage, _Graph)

    def upsert(self, ids: Sequence[str], clusters: Sequence[str], vectors: np.ndarray) -> None:
        """A known id keeps its row and gets the new vector and cluster; within one call the last
        copy of an id wins."""
        latest: dict[int, int] = {}
        for position, (item_id, cluster_id) in enumerate(zip(ids, clusters, strict=True)):
            row = self.rows.get(item_id)
            if row is None:
                row = self.rows[item_id] = len(self.ids)
                self.ids.append(item_id)
                self.cluster_of.append(cluster_id)
            self.cluster_of[row] = cluster_id
            latest[row] = position
        if not latest:
            return
        rows = np.fromiter(latest.keys(), dtype=np.int64, count=len(latest))
        self.storage.put(rows, vectors[list(latest.values())])
        if not self.uses_graph and len(self.ids) >= self.tuning.ann_min:
            self._build_graph()

    def reassign(self, ids: Sequence[str], cluster_id: str) -> None:
        for item_id in ids:
            row = self.rows.get(item_id)
            if row is not None:
                self.cluster_of[row] = cluster_id

    def search(self, queries: np.ndarray, top_k: int) -> list[list[Match]]:
        count = len(self.ids)
        if count == 0 or top_k <= 0:
            return [[] for _ in range(len(queries))]
        rows, scores = self.storage.search(np.asarray(queries, dtype=np.float32), min(top_k, count), count)
        ids, clusters = self.ids, self.cluster_of
        return [
            [
                Match(ids[row], float(score), clusters[row])
                for row, score in zip(row_ids, row_scores, strict=True)
            ]
            for row_ids, row_scores in zip(rows.tolist(), scores.tolist(), strict=True)
        ]

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        known = [item_id for item_id in ids if item_id in self.rows]
        if not known:
            return {}
        found = self.storage.get([self.rows[item_id] for item_id in known])
        return dict(zip(known, found, strict=True))

    def _build_graph(self) -> None:
        """Crossing `ann_min`: the graph is built from the rows once, then the rows are dropped."""
        assert isinstance(self.storage, _ExactRows)
        count = len(self.ids)
        graph = _Graph.empty(self.dimensions, 2 * count, self.tuning.search_ef)
        graph.put(np.arange(count, dtype=np.int64), self.storage.matrix[:count])
        self.storage = graph

    def image(self, payload: Path) -> CopyImage:
        """The copy, its storage saved to `payload`."""
        ids = _SEPARATOR.join(self.ids).encode()
        clusters = _SEPARATOR.join(self.cluster_of).encode()
        if isinstance(self.storage, _Graph):
            self.storage.index.save_index(str(payload))
            return CopyImage(GRAPH, ids, clusters, payload, payload.stat().st_size)
        self.storage.matrix[: len(self.ids)].tofile(payload)
        return CopyImage(EXACT, ids, clusters, payload, payload.stat().st_size)

    @classmethod
    def from_image(cls, image: CopyImage, count: int, dimensions: int, tuning: IndexTuning) -> LocalCopy:
        copy = cls(dimensions, tuning)
        copy.ids = image.ids.decode().split(_SEPARATOR) if count else []
        copy.cluster_of = image.clusters.decode().split(_SEPARATOR) if count else []
        if len(copy.ids) != count or len(copy.cluster_of) != count:
            raise ValueError(f"snapshot side tables do not hold {count} items")
        copy.rows = {item_id: row for row, item_id in enumerate(copy.ids)}
        if image.storage == GRAPH:
            index = hnswlib.Index(space="ip", dim=dimensions)
            index.load_index(str(image.payload), max_elements=max(2 * count, 1024))
            copy.storage = _Graph(index, tuning.search_ef)
        else:
            rows = np.fromfile(image.payload, dtype=np.float32).reshape(count, dimensions)
            copy.storage = _ExactRows(dimensions, rows)
            if count >= tuning.ann_min:
                copy._build_graph()
        return copy
