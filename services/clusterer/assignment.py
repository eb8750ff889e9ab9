"""Online cluster assignment: which cluster each item of a batch joins (pure numpy, no I/O).

An item joins the candidate cluster whose CENTROID is most similar, when that raw cosine reaches
the threshold; else it seeds a new cluster. Candidates are the clusters of its nearest indexed items
and of its nearest earlier items in the same batch (the index may not show those yet). Testing the
centroid rather than one member stops chaining: A near B near C no longer puts A and C together.
An item only considers clusters of its own kind of text (machine or natural language, by source)
and joins with that kind's threshold.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from services.clusterer.thresholds import Profiles
from services.clusterer.vector_index.base import Match

# Fixed namespace: a retried batch re-creates the same cluster id from the same seed item.
CLUSTER_NAMESPACE = uuid.UUID("0b6c3f52-8d1e-4a7b-9c55-2e9f1d7a4c08")


def cluster_id_for(seed_item_id: str) -> str:
    return str(uuid.uuid5(CLUSTER_NAMESPACE, seed_item_id))


@dataclass
class ClusterState:
    """What assignment needs of a cluster: the SUM of member vectors (the centroid up to scale)."""

    id: str
    total: np.ndarray
    size: int
    central_item: str
    central_score: float
    source_counts: dict[str, int] = field(default_factory=dict)
    created_at: str = ""

    @property
    def centroid(self) -> np.ndarray:
        """The running mean, as stored in the cluster hash."""
        mean: np.ndarray = self.total / max(self.size, 1)
        return mean

    def similarity(self, vectors: np.ndarray) -> np.ndarray:
        """Raw cosine of each row to the centroid direction (0 for an all-zero centroid)."""
        norm = float(np.linalg.norm(self.total))
        return np.asarray(vectors @ self.total / norm if norm > 0 else np.zeros(len(vectors)))

    def add(self, item_id: str, vector: np.ndarray, source: str) -> None:
        """Join: the centroid moves, and the item becomes the title item if it is now the most central."""
        self.total = self.total + vector
        self.size += 1
        self.source_counts[source] = self.source_counts.get(source, 0) + 1
        score = float(self.similarity(vector[None, :])[0])
        if score > self.central_score:
            self.central_item, self.central_score = item_id, score

    def absorb(self, other: ClusterState) -> None:
        """Merge: sums and counts add; the more central title item wins; the older creation time stays."""
        self.total = self.total + other.total
        self.size += other.size
        for source, count in other.source_counts.items():
            self.source_counts[source] = self.source_counts.get(source, 0) + count
        if other.central_score > self.central_score:
            self.central_item, self.central_score = other.central_item, other.central_score
        self.created_at = min(self.created_at, other.created_at) or self.created_at


def seed_cluster(item_id: str, vector: np.ndarray, source: str, created_at: str) -> ClusterState:
    return ClusterState(
        id=cluster_id_for(item_id),
        total=vector.astype(np.float64),
        size=1,
        central_item=item_id,
        central_score=1.0 if np.any(vector) else 0.0,
        source_counts={source: 1},
        created_at=created_at,
    )


@dataclass(frozen=True)
class BatchItem:
    id: str
    source: str


@dataclass
class Assignment:
    """Each item's cluster, and every cluster this batch created or changed."""

    cluster_of: dict[str, str]
    clusters: dict[str, ClusterState]


def assign(
    items: Sequence[BatchItem],
    vectors: np.ndarray,
    neighbours: Sequence[Sequence[Match]],
    known: dict[str, ClusterState],
    profiles: Profiles,
    peers: int,
    now: str,
) -> Assignment:
    """`neighbours[i]` are item i's index matches (batch items excluded); `known` holds the states of
    the clusters they name (missing ones are ignored). States in `known` are updated in place."""
    batch_peers = vectors @ vectors.T
    cluster_of: dict[str, str] = {}
    changed: dict[str, ClusterState] = {}
    for i, item in enumerate(items):
        candidates = {m.cluster_id for m in neighbours[i] if m.cluster_id in known}
        if i:
            nearest_earlier = np.argsort(-batch_peers[i, :i], kind="stable")[:peers]
            candidates.update(cluster_of[items[j].id] for j in nearest_earlier)
        kind = profiles.kind_of([item.source])
        same_kind = [known[c] for c in sorted(candidates) if profiles.kind_of(known[c].source_counts) is kind]
        vector = vectors[i].astype(np.float64)
        best = _best_cluster(vector, same_kind, profiles.of(kind).join)
        if best is None:
            best = seed_cluster(item.id, vector, item.source, now)
            known[best.id] = best
        else:
            best.add(item.id, vector, item.source)
        cluster_of[item.id] = best.id
        changed[best.id] = best
    return Assignment(cluster_of, changed)


def _best_cluster(
    vector: np.ndarray, candidates: list[ClusterState], threshold: float
) -> ClusterState | None:
    if not candidates:
        return None
    scores = [float(state.similarity(vector[None, :])[0]) for state in candidates]
    best = int(np.argmax(scores))
    return candidates[best] if scores[best] >= threshold else None
