"""Online cluster assignment between consolidation passes: which cluster each new item joins.

Pure numpy, no I/O. Each item's neighbours VOTE for their clusters, weighted by cosine: only a
neighbour at least the profile's `join` similar votes, and the item joins the cluster with the
most weight, or seeds a new one when no neighbour is close enough. Neighbours are its nearest
indexed items and its nearest earlier items of the same batch (the index may not show those yet),
and only items of its own kind of text (machine or natural language, by source). Error events
are grouped exactly first: an item whose error fingerprint (services/clusterer/fingerprints.py)
already has a cluster joins it without a vote. The same
neighbours become the item's edges in the neighbour graph, which the consolidation pass uses to
correct what a vote alone cannot (a vote chains; communities do not).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from services.clusterer.neighbour_graph import BatchEdges
from services.clusterer.thresholds import Profiles, TextKind
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
    fingerprint: str | None = None  # error events: same fingerprint, same cluster


@dataclass
class Assignment:
    """Each item's cluster, every cluster this batch created or changed, and the batch's graph
    edges per kind of text."""

    cluster_of: dict[str, str]
    clusters: dict[str, ClusterState]
    edges: dict[TextKind, BatchEdges]
    first_with: dict[str, str]  # fingerprint -> the batch's first item with it (a group's anchor)


def assign(
    items: Sequence[BatchItem],
    vectors: np.ndarray,
    neighbours: Sequence[Sequence[Match]],
    known: dict[str, ClusterState],
    profiles: Profiles,
    peers: int,
    now: str,
    error_groups: dict[str, str] | None = None,
) -> Assignment:
    """`neighbours[i]` are item i's index matches (batch items excluded), each naming its item's
    current cluster; `known` holds the states of those clusters (matches of missing ones are
    ignored). An item with a fingerprint joins its group's cluster (`error_groups`: fingerprint ->
    cluster, or an earlier item of the batch) before any vote. States in `known` are updated in
    place."""
    groups = dict(error_groups or {})
    first_with: dict[str, str] = {}
    batch_peers = vectors @ vectors.T
    cluster_of: dict[str, str] = {}
    changed: dict[str, ClusterState] = {}
    edges = {kind: BatchEdges() for kind in TextKind}
    kinds = [profiles.kind_of([item.source]) for item in items]
    for i, item in enumerate(items):
        kind = kinds[i]
        voters = [
            (m.id, m.score, m.cluster_id)
            for m in neighbours[i]
            if m.cluster_id in known and profiles.kind_of(known[m.cluster_id].source_counts) is kind
        ]
        earlier = [j for j in np.argsort(-batch_peers[i, :i], kind="stable") if kinds[j] is kind]
        voters += [(items[j].id, float(batch_peers[i, j]), cluster_of[items[j].id]) for j in earlier[:peers]]
        edges[kind].nodes.append(item.id)
        for neighbour_id, similarity, _ in voters:
            if similarity > 0:
                edges[kind].add(item.id, neighbour_id, similarity)
        vector = vectors[i].astype(np.float64)
        grouped = groups.get(item.fingerprint) if item.fingerprint else None
        best = grouped if grouped in known else _vote(voters, profiles.of(kind).join)
        if best is None:
            state = seed_cluster(item.id, vector, item.source, now)
            known[state.id] = state
        else:
            state = known[best]
            state.add(item.id, vector, item.source)
        cluster_of[item.id] = state.id
        changed[state.id] = state
        if item.fingerprint:
            groups.setdefault(item.fingerprint, state.id)
            first_with.setdefault(item.fingerprint, item.id)
    edges_of = {kind: e for kind, e in edges.items() if e.nodes}
    return Assignment(cluster_of, changed, edges_of, first_with)


def _vote(voters: Sequence[tuple[str, float, str]], join: float) -> str | None:
    """The cluster with the most similarity among neighbours at least `join` similar (ties: the
    smaller id, so a retried batch decides the same), or None when no neighbour is that close."""
    votes: dict[str, float] = {}
    for _, similarity, cluster_id in voters:
        if similarity >= join:
            votes[cluster_id] = votes.get(cluster_id, 0.0) + similarity
    if not votes:
        return None
    return min(votes, key=lambda cluster_id: (-votes[cluster_id], cluster_id))
