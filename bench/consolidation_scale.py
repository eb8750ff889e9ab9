"""How a consolidation pass scales: time and peak memory of its graph work at 10k, 100k (and 1M).

A synthetic neighbour graph stands in for real data: communities of 50 items, 10 edges per item
(8 to its own community at cosine ~0.7, 2 anywhere at ~0.3), every item already in the cluster of
its community (what earlier passes left). Then 1,000 new items arrive, each linked to one
community and two random items, each in a cluster of its own (what online assignment left when
no vote was strong enough). Measured, in a fresh process per size so peak memory is the pass's:
- the incremental pass: the region (the new items, their neighbours, every member of their
  clusters) and Leiden on its induced subgraph, the rest of each cluster as one node;
- the full pass (every item), at 10k and 100k only unless --full-at-1m.
Redis reads and the commit are left out: they touch only the region's items and clusters.

    .venv/bin/python -m bench.consolidation_scale            # 10k and 100k
    .venv/bin/python -m bench.consolidation_scale --1m        # adds the 1M incremental pass
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import numpy as np

from services.clusterer.consolidation import plan_communities
from services.clusterer.neighbour_graph import GraphReplica, neighbour_rows
from services.clusterer.thresholds import DEFAULTS

COMMUNITY = 50
NEW_ITEMS = 1_000
INSIDE, ANYWHERE = 8, 2


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_graph(size: int, rng: np.random.Generator) -> tuple[GraphReplica, np.ndarray]:
    """The graph of `size` settled items plus NEW_ITEMS new ones, and each item's cluster number."""
    graph = GraphReplica(None, "synthetic")  # type: ignore[arg-type]  # never synced
    total = size + NEW_ITEMS
    graph.ids = [f"i{n}" for n in range(total)]
    graph.row = {item_id: n for n, item_id in enumerate(graph.ids)}
    community = np.arange(size) // COMMUNITY
    new_community = rng.integers(0, size // COMMUNITY, NEW_ITEMS)
    home = np.concatenate([community, new_community])
    sources = np.repeat(np.arange(total), INSIDE + ANYWHERE)
    inside = home[sources] * COMMUNITY + rng.integers(0, COMMUNITY, len(sources))
    anywhere = rng.integers(0, size, len(sources))
    is_inside = np.tile(np.arange(INSIDE + ANYWHERE) < INSIDE, total)
    targets = np.where(is_inside, inside, anywhere)
    weights = np.where(is_inside, 0.7, 0.3) + rng.normal(0, 0.03, len(sources))
    graph.sources.extend(sources.astype(np.int32))
    graph.targets.extend(targets.astype(np.int32))
    graph.weights.extend(weights.astype(np.float32))
    clusters = np.concatenate([community, size // COMMUNITY + np.arange(NEW_ITEMS)])
    return graph, clusters


def measure(size: int, full: bool) -> None:
    rng = np.random.default_rng(0)
    graph, clusters = synthetic_graph(size, rng)
    built = _rss_mb()
    started = time.perf_counter()
    if full:
        rows = near = np.arange(len(graph.ids))
    else:
        near = neighbour_rows(graph, range(size, size + NEW_ITEMS))
        rows = np.flatnonzero(np.isin(clusters, np.unique(clusters[near])))
    owners = {graph.ids[row]: f"c{clusters[row]}" for row in rows.tolist()}
    free = {graph.ids[row] for row in near.tolist()}
    moves = plan_communities(graph, owners, free, DEFAULTS["minilm"].resolution, from_scratch=full)
    seconds = time.perf_counter() - started
    placed = sum(1 for item, _, _ in moves if graph.row[item] >= size)
    print(
        f"{size:>9,} items  {'full' if full else 'incremental':11s} region {len(rows):>9,} "
        f"({len(near):,} free)  "
        f"{seconds:6.2f} s  peak RSS {_rss_mb():6.0f} MB (graph alone {built:6.0f} MB)  "
        f"moves {len(moves):,} ({placed} of the {NEW_ITEMS:,} new items joined a community)",
        flush=True,
    )


def main(with_million: bool, full_at_million: bool) -> None:
    runs = [(10_000, False), (10_000, True), (100_000, False), (100_000, True)]
    if with_million:
        runs.append((1_000_000, False))
    if full_at_million:
        runs.append((1_000_000, True))
    for size, full in runs:
        command = [sys.executable, "-m", "bench.consolidation_scale", "--one", str(size)]
        subprocess.run([*command, "--full"] if full else command, check=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--1m", dest="million", action="store_true", help="also the 1M incremental pass")
    parser.add_argument("--full-at-1m", action="store_true", help="also a full pass at 1M (minutes, GBs)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        measure(args.one, args.full)
    else:
        main(args.million, args.full_at_1m)
