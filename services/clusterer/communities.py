"""Communities of (part of) the neighbour graph, and keeping cluster ids stable across passes.

Pure functions, no I/O. Detection is Leiden (igraph + leidenalg) with the modularity of the
configuration model, written as the constant Potts model whose node sizes are each node's
weighted degree IN THE WHOLE GRAPH and whose resolution is divided by the whole graph's total
degree. The two are the same objective, but this form stays the same on an induced subgraph,
which is what lets an incremental pass re-detect only the touched part of a large graph and land
where a full pass would. An incremental pass starts Leiden from the current clusters; a full pass,
and every pass over a graph of at most FROM_SCRATCH_NODES, starts from singletons and runs until
nothing improves, so its result depends on the graph alone (not on the passes before it), and a
second pass over the same graph finds the same communities and moves nothing.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence

import igraph as ig
import leidenalg as la
import numpy as np

from services.clusterer.assignment import CLUSTER_NAMESPACE

SEED = 0
# Until an iteration improves nothing, but at most this many: on a 1M-item graph Leiden kept
# improving for 13 iterations (1.3 s each); the next pass goes on from where this one stopped.
MAX_ITERATIONS = 4
# Graphs up to this many nodes are re-detected whole, from singletons, at every pass: a pass that
# ran over a partial graph (mid-drain) otherwise fixes clusters that later incremental passes only
# move as whole nodes (Banking77 0.46 instead of 0.51). A full from-scratch pass takes ~1.3 s of
# graph work at 10k nodes (docs/clustering.md, Pass scale).
FROM_SCRATCH_NODES = 10_000
# The configured resolution holds from this many graph nodes up (the benchmark sets' size) ...
REFERENCE_NODES = 3000
# ... and below it shrinks as (nodes / REFERENCE_NODES) ** SIZE_EXPONENT (4 -> 2.05 at 35 nodes).
SIZE_EXPONENT = 0.15


def scaled_resolution(resolution: float, node_count: int) -> float:
    """The resolution to use on a graph of `node_count` nodes (the whole graph, so an incremental
    pass and a full pass over the same graph use the same one)."""
    return resolution * float(min(1.0, node_count / REFERENCE_NODES) ** SIZE_EXPONENT)


def detect(
    node_count: int,
    edges: np.ndarray,
    weights: np.ndarray,
    initial: Sequence[int],
    degrees: np.ndarray,
    resolution: float,
    total_degree: float,
    from_scratch: bool = False,
) -> list[int]:
    """Community of each node of the subgraph (`edges` is (m, 2) of local node numbers); `degrees`
    and `total_degree` come from the whole graph. Leiden starts from `initial`, for at most
    MAX_ITERATIONS. `from_scratch`: Leiden also starts from singletons, both run until nothing
    improves, and the partition of higher quality wins (ties: the one from `initial`, which moves
    less): a start fixed by an earlier pass over a partial graph is a local optimum Leiden cannot
    leave, and the online clusters are a better start than singletons when nothing fixed them."""
    graph = ig.Graph(n=node_count, edges=edges.tolist())
    partitions = [_optimised(graph, list(initial), weights, degrees, resolution, total_degree, from_scratch)]
    if from_scratch:
        partitions.append(_optimised(graph, None, weights, degrees, resolution, total_degree, True))
    best = max(partitions, key=lambda partition: partition.quality())
    return list(best.membership)


def _optimised(
    graph: ig.Graph,
    initial: list[int] | None,
    weights: np.ndarray,
    degrees: np.ndarray,
    resolution: float,
    total_degree: float,
    until_stable: bool,
) -> la.CPMVertexPartition:
    partition = la.CPMVertexPartition(
        graph,
        initial_membership=initial,
        weights=weights.tolist(),
        node_sizes=degrees.tolist(),
        resolution_parameter=resolution / max(total_degree, 1e-12),
    )
    optimiser = la.Optimiser()
    optimiser.set_rng_seed(SEED)
    if until_stable:
        optimiser.optimise_partition(partition, n_iterations=-1)
        return partition
    for _ in range(MAX_ITERATIONS):
        if optimiser.optimise_partition(partition, n_iterations=1) == 0:
            break
    return partition


def new_cluster_id(members: Sequence[str]) -> str:
    """Derived from the whole member set, so it never repeats an id seeded by one item, and a
    retried pass over the same graph names the same new cluster."""
    return str(uuid.uuid5(CLUSTER_NAMESPACE, "community:" + "\n".join(sorted(members))))


def reconcile(item_ids: Sequence[str], owners: Sequence[str], membership: Sequence[int]) -> list[str]:
    """The cluster id each item should have: a community keeps the id of the existing cluster it
    overlaps most (largest overlaps first, each id used once); the rest get new ids. A cluster
    whose id no community keeps has been split up or merged away."""
    overlap = Counter(zip(membership, owners, strict=True))
    members: dict[int, list[str]] = {}
    for item_id, community in zip(item_ids, membership, strict=True):
        members.setdefault(community, []).append(item_id)
    name: dict[int, str] = {}
    taken: set[str] = set()
    for (community, owner), _ in sorted(overlap.items(), key=lambda pair: (-pair[1], pair[0][1], pair[0][0])):
        if community not in name and owner not in taken:
            name[community] = owner
            taken.add(owner)
    for community, ids in members.items():
        if community not in name:
            name[community] = new_cluster_id(ids)
    return [name[community] for community in membership]
