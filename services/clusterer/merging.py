"""Average-linkage merging, the machine-text profile's consolidation method (pure numpy, no I/O).

Online assignment over-splits log templates (near-identical lines vote for whichever cluster they
met first), and graph communities measured far below average linkage on them (docs/clustering.md).
The consolidation pass therefore merges machine-text clusters greedily by AVERAGE LINKAGE: the
score of two clusters is the mean cosine over every pair of their members, which for unit vectors
is the dot product of the two mean vectors (sum_a . sum_b / (n_a n_b)), so it needs no item
vectors. Unlike the cosine of the centroid directions, it counts how spread out a cluster is: a
large generic cluster has a short mean vector and stops absorbing its neighbours. The closest pair
goes first and every later pair is re-scored against the merged clusters, so A~B~C never merges a
distant A and C.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.clusterer.assignment import ClusterState


@dataclass(frozen=True)
class MergeGroup:
    """`absorbed` clusters fold into `target`, which keeps its id; `state` is the merged result."""

    target: str
    absorbed: tuple[str, ...]
    state: ClusterState


def average_linkage(a: ClusterState, b: ClusterState) -> float:
    """Mean cosine over all member pairs of `a` and `b` (members are unit vectors)."""
    return float(a.total @ b.total) / max(a.size * b.size, 1)


def plan_merges(
    states: dict[str, ClusterState], pairs: set[tuple[str, str]], threshold: float
) -> list[MergeGroup]:
    """`pairs` are the candidate (a, b) couples to consider; states are not modified."""
    work = {cid: _copy(state) for cid, state in states.items()}
    owner = {cid: cid for cid in states}
    absorbed: dict[str, list[str]] = {}
    scored = sorted(
        ((average_linkage(work[a], work[b]), a, b) for a, b in pairs if a != b),
        reverse=True,
    )
    for _, a, b in scored:
        root_a, root_b = _root(owner, a), _root(owner, b)
        if root_a == root_b:
            continue
        if average_linkage(work[root_a], work[root_b]) < threshold:
            continue
        target, source = _target_first(work[root_a], work[root_b])
        work[target.id].absorb(source)
        owner[source.id] = target.id
        absorbed.setdefault(target.id, []).extend([source.id, *absorbed.pop(source.id, [])])
    return [MergeGroup(target, tuple(sorted(ids)), work[target]) for target, ids in sorted(absorbed.items())]


def _root(owner: dict[str, str], cid: str) -> str:
    while owner[cid] != cid:
        cid = owner[cid]
    return cid


def _target_first(a: ClusterState, b: ClusterState) -> tuple[ClusterState, ClusterState]:
    """The larger cluster keeps its id (fewer members to move); ties go to the smaller id."""
    return (a, b) if (-a.size, a.id) <= (-b.size, b.id) else (b, a)


def _copy(state: ClusterState) -> ClusterState:
    return ClusterState(
        id=state.id,
        total=state.total.copy(),
        size=state.size,
        central_item=state.central_item,
        central_score=state.central_score,
        source_counts=dict(state.source_counts),
        created_at=state.created_at,
    )
