"""The consolidation pass: correct the online clusters from the neighbour graph, per kind of text.

Online assignment decides each item once, from the neighbours it had on arrival; that over-splits
and chains. The pass re-decides the part of the graph that changed since the last pass (nodes
added after the cursor, their neighbours, and every member of those nodes' clusters), or all of
it with `full`. Touched natural-language items first get their edges to later neighbours
(services/clusterer/neighbour_graph.py says why). Then:
- natural language: Leiden communities (services/clusterer/communities.py), which may split and
  merge clusters;
- machine text: average-linkage merging of the touched clusters (services/clusterer/merging.py).
Communities keep the id of the cluster they overlap most, so ids stay stable.

Everything is planned OFF the lock. The commit takes the lock, re-reads the owners of the items it
moves (online assignment may have run meanwhile; a move planned from a stale owner is dropped),
recomputes the centroid, sources and title item of every changed cluster, and writes it all plus
the new cursor in one fenced script: a pass that lost its lock writes nothing. Labels are
refreshed after the lock is released, as in the worker.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from redis.asyncio import Redis

from services.clusterer.assignment import ClusterState
from services.clusterer.cluster_store import ClusterStore
from services.clusterer.communities import FROM_SCRATCH_NODES, detect, reconcile, scaled_resolution
from services.clusterer.embedders.base import Embedder
from services.clusterer.keywords import cluster_keywords
from services.clusterer.lock import RedisLock
from services.clusterer.merging import plan_merges
from services.clusterer.neighbour_graph import START, BatchEdges, GraphReplica, append_edges, neighbour_rows
from services.clusterer.providers import build_embedder, build_summarizer, build_vector_index
from services.clusterer.summarizers.base import Summarizer
from services.clusterer.thresholds import Profiles, TextKind, profiles_for
from services.clusterer.vector_index.base import VectorIndex
from shared.keys import Keys
from shared.models import FeedbackItem
from shared.redis_connection import binary_twin
from shared.settings import Settings

log = logging.getLogger(__name__)
LABEL_MEMBERS = 5
KEYWORD_MEMBERS = 200
REFRESH_CHUNK = 64

Move = tuple[str, str, str]  # (item, from cluster, to cluster)


@dataclass(frozen=True)
class PassResult:
    kind: TextKind
    region: int  # items re-decided
    moved: int
    created: int  # clusters that did not exist before (split off)
    deleted: int  # clusters left empty (merged away)
    seconds: float


@dataclass(frozen=True)
class _Region:
    owners: dict[str, str]  # every member of the touched clusters -> its cluster
    members: dict[str, set[str]]
    free: set[str]  # the touched items and their neighbours


def _entry_ms(entry_id: str) -> int:
    return int(entry_id.partition("-")[0])


def _after(entry_id: str, cursor: str) -> bool:
    def key(value: str) -> tuple[int, int]:
        milliseconds, _, sequence = value.partition("-")
        return int(milliseconds), int(sequence or 0)

    return key(entry_id) > key(cursor)


class Consolidator:
    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        index: VectorIndex,
        index_name: str,
        lock: RedisLock,
        profiles: Profiles,
        summarizer: Summarizer,
        neighbours: int = 10,
        lock_wait_seconds: float = 60.0,
    ) -> None:
        self._redis = redis
        self._neighbours = neighbours
        self._keys = keys
        self._index = index
        self._lock = lock
        self._profiles = profiles
        self._summarizer = summarizer
        self._lock_wait = lock_wait_seconds
        self._store = ClusterStore(redis, keys, lock.key)
        self._binary = binary = binary_twin(redis)
        self._graph_keys = {kind: keys.neighbour_graph(index_name, kind) for kind in TextKind}
        self._cursor_keys = {kind: keys.graph_consolidated(index_name, kind) for kind in TextKind}
        self.graphs = {kind: GraphReplica(binary, self._graph_keys[kind]) for kind in TextKind}

    async def due(self, debounce_seconds: float, max_wait_seconds: float) -> bool:
        """New graph entries since the last pass, and either quiet for `debounce_seconds` or the
        oldest waiting longer than `max_wait_seconds` (stream ids carry the server's clock)."""
        seconds, microseconds = await self._redis.time()
        now_ms = seconds * 1000 + microseconds // 1000
        for kind in TextKind:
            cursor = await self._redis.get(self._cursor_keys[kind]) or START
            # The binary client: entries hold raw float32 weights, which do not decode as text.
            newest = await self._binary.xrevrange(self._graph_keys[kind], count=1)
            if not newest or not _after(newest[0][0].decode(), cursor):
                continue
            oldest = await self._binary.xrange(self._graph_keys[kind], min="(" + cursor, count=1)
            if now_ms - _entry_ms(newest[0][0].decode()) >= debounce_seconds * 1000:
                return True
            if oldest and now_ms - _entry_ms(oldest[0][0].decode()) >= max_wait_seconds * 1000:
                return True
        return False

    async def run(self, full: bool = False) -> list[PassResult]:
        """One pass per kind of text that has something to do (`full`: the whole graph)."""
        results = []
        for kind in TextKind:
            result = await self._run_kind(kind, full)
            if result is not None:
                results.append(result)
        return results

    async def _run_kind(self, kind: TextKind, full: bool) -> PassResult | None:
        started = time.perf_counter()
        graph = self.graphs[kind]
        await graph.sync()
        cursor = await self._redis.get(self._cursor_keys[kind]) or START
        if not _after(graph.last_entry.decode(), cursor) and not (full and graph.ids):
            return None
        whole = full or (kind is TextKind.NATURAL and len(graph.ids) <= FROM_SCRATCH_NODES)
        touched = range(len(graph.ids)) if whole else graph.nodes_after(cursor)
        while kind is TextKind.NATURAL and any(row not in graph.refreshed for row in touched):
            await self._refresh_edges(graph, touched)  # items may arrive meanwhile: refresh them too
            touched = range(len(graph.ids)) if whole else graph.nodes_after(cursor)
        head = graph.last_entry.decode()
        region = await self._region(graph, touched)
        if kind is TextKind.MACHINE:
            moves = await self._plan_merges(graph, region)
        else:
            moves = self._plan_communities(graph, region, from_scratch=whole)
        moved, created, deleted = await self._commit(kind, head, moves, region)
        result = PassResult(kind, len(region.owners), moved, created, deleted, time.perf_counter() - started)
        log.info(
            "consolidated",
            extra={
                "kind": str(kind),
                "region": result.region,
                "moved": moved,
                "split_off": created,
                "merged_away": deleted,
                "seconds": round(result.seconds, 3),
            },
        )
        return result

    async def _refresh_edges(self, graph: GraphReplica, touched: range) -> None:
        """Give each touched item not refreshed yet its edges to neighbours that arrived after it
        (same kind: nodes of this graph), one graph entry per chunk, off the lock."""
        pending = [graph.ids[row] for row in touched if row not in graph.refreshed]
        for start in range(0, len(pending), REFRESH_CHUNK):
            chunk = pending[start : start + REFRESH_CHUNK]
            found = await self._index.vectors(chunk)
            ids = list(found)
            matches = (
                await self._index.query(np.stack([found[i] for i in ids]), self._neighbours + 1)
                if ids
                else []
            )
            edges = BatchEdges(nodes=chunk, refresh=True)  # an item without a stored vector: done too
            for item_id, row in zip(ids, matches, strict=True):
                own = graph.row[item_id]
                later = [m for m in row if graph.row.get(m.id, -1) > own and m.score > 0]
                for match in later[: self._neighbours]:
                    edges.add(item_id, match.id, match.score)
            await append_edges(self._binary, graph.key, edges)
        await graph.sync()

    async def _region(self, graph: GraphReplica, touched: range) -> _Region:
        rows = neighbour_rows(graph, touched)
        near = await self._store.owners([graph.ids[row] for row in rows])
        cluster_ids = sorted(set(near.values()))
        member_sets = await self._store.members(cluster_ids)
        members = dict(zip(cluster_ids, member_sets, strict=True))
        owners = await self._store.owners(sorted(set().union(*member_sets)))
        return _Region(owners, members, {graph.ids[row] for row in rows.tolist()})

    def _plan_communities(self, graph: GraphReplica, region: _Region, from_scratch: bool) -> list[Move]:
        resolution = self._profiles.natural.resolution
        return plan_communities(graph, region.owners, region.free, resolution, from_scratch)

    async def _plan_merges(self, graph: GraphReplica, region: _Region) -> list[Move]:
        """Average linkage between touched clusters that share a graph edge."""
        states = await self._store.load(region.members)
        sources, targets = graph.sources.values, graph.targets.values
        owner_of = np.full(len(graph.ids), -1, dtype=np.int64)
        cluster_ids = sorted(states)
        numbering = {cluster_id: n for n, cluster_id in enumerate(cluster_ids)}
        for item_id, owner in region.owners.items():
            if item_id in graph.row and owner in numbering:
                owner_of[graph.row[item_id]] = numbering[owner]
        a, b = owner_of[sources], owner_of[targets]
        linked = (a >= 0) & (b >= 0) & (a != b)
        pairs = {
            (cluster_ids[min(x, y)], cluster_ids[max(x, y)])
            for x, y in zip(a[linked].tolist(), b[linked].tolist(), strict=True)
        }
        groups = plan_merges(states, pairs, self._profiles.machine.merge)
        return [
            (item_id, absorbed, group.target)
            for group in groups
            for absorbed in group.absorbed
            for item_id in sorted(region.members[absorbed])
        ]

    async def _commit(
        self, kind: TextKind, head: str, moves: Sequence[Move], region: _Region
    ) -> tuple[int, int, int]:
        planned = _apply(region.members, moves)
        states, titles = await self._states(planned)
        cursor = (self._cursor_keys[kind], head)
        now = datetime.now(UTC).isoformat()
        async with self._lock.held(self._lock_wait) as token:
            current = await self._store.owners([item_id for item_id, _, _ in moves])
            moves = [move for move in moves if current.get(move[0]) == move[1]]
            changed = sorted({cluster_id for _, source, target in moves for cluster_id in (source, target)})
            now_members = dict(zip(changed, await self._store.members(changed), strict=True))
            final = _apply(now_members, moves)
            stale = {c: m for c, m in final.items() if m and m != planned.get(c)}
            fresh_states, fresh_titles = await self._states(stale)
            states.update(fresh_states)
            titles.update(fresh_titles)
            kept = [states[c] for c in changed if final[c]]
            gone = [c for c in changed if not final[c]]
            moved, deleted = await self._store.commit_pass(token, cursor, moves, kept, gone, titles, now)
        created = sum(1 for c in changed if c not in region.members)
        await self._refresh_labels(kept, final)
        await self._refresh_keywords([state.id for state in kept], {**region.members, **final})
        return moved, created, deleted

    async def _states(self, members: dict[str, set[str]]) -> tuple[dict[str, ClusterState], dict[str, str]]:
        """Each non-empty cluster's state rebuilt from its members' vectors and sources, and the
        titles of their central items."""
        everyone = sorted(set().union(*members.values())) if members else []
        vectors = await self._index.vectors(everyone)
        async with self._redis.pipeline(transaction=False) as pipe:
            for item_id in everyone:
                pipe.hmget(self._keys.feedback(item_id), ["source", "title"])
            rows: list[list[str | None]] = await pipe.execute()
        source_of = {i: row[0] or "" for i, row in zip(everyone, rows, strict=True)}
        title_of = {i: row[1] or "" for i, row in zip(everyone, rows, strict=True)}
        states: dict[str, ClusterState] = {}
        titles: dict[str, str] = {}
        for cluster_id, ids in members.items():
            if ids:
                states[cluster_id] = _state(cluster_id, sorted(ids), vectors, source_of)
                titles[states[cluster_id].central_item] = title_of.get(states[cluster_id].central_item, "")
        return states, titles

    async def _refresh_labels(self, states: Iterable[ClusterState], members: dict[str, set[str]]) -> None:
        """Best effort, like the worker's: a failing summarizer keeps the previous label."""
        for state in states:
            others = sorted(members[state.id] - {state.central_item})[: LABEL_MEMBERS - 1]
            async with self._redis.pipeline(transaction=False) as pipe:
                for item_id in [state.central_item, *others]:
                    pipe.hgetall(self._keys.feedback(item_id))
                hashes: list[dict[str, str]] = await pipe.execute()
            items = [FeedbackItem.from_hash(fields) for fields in hashes if fields]
            try:
                label = await self._summarizer.summarize(items, state.source_counts)
            except Exception:
                log.exception("summarizer failed; keeping the previous label", extra={"cluster_id": state.id})
                continue
            await self._store.set_label(state.id, label)

    async def _refresh_keywords(self, changed: Sequence[str], members: dict[str, set[str]]) -> None:
        """c-TF-IDF keywords of the changed clusters, against the region's clusters as the corpus:
        the texts are at hand and a neighbourhood is what the keywords must tell apart. At most
        KEYWORD_MEMBERS texts per cluster keep a pass over large clusters cheap."""
        if not changed:
            return
        sampled = {c: sorted(ids)[:KEYWORD_MEMBERS] for c, ids in members.items() if ids}
        everyone = sorted({i for ids in sampled.values() for i in ids})
        async with self._redis.pipeline(transaction=False) as pipe:
            for item_id in everyone:
                pipe.hmget(self._keys.feedback(item_id), ["title", "body"])
            rows: list[list[str | None]] = await pipe.execute()
        text_of = {i: " ".join(part or "" for part in row) for i, row in zip(everyone, rows, strict=True)}
        keywords = cluster_keywords({c: [text_of[i] for i in ids] for c, ids in sampled.items()})
        await self._store.set_keywords({c: keywords.get(c, []) for c in changed})


def plan_communities(
    graph: GraphReplica,
    owners: dict[str, str],
    free: set[str],
    resolution: float,
    from_scratch: bool = False,
) -> list[Move]:
    """Leiden over the region `owners` (item -> current cluster), started from the current
    clusters. Items in `free` (the touched ones and their neighbours) move one by one; the rest
    of each cluster moves as ONE node (its members' edges and degrees summed), so an incremental
    pass stays small however large the clusters are, yet whole clusters can still merge.
    `from_scratch` (a full pass, or a graph small enough to re-detect whole): every item moves
    one by one and Leiden starts from singletons, so clusters fixed by an earlier pass over a
    partial graph do not survive as whole nodes; the current clusters then only name the result.
    Members that are not in the graph (clustered before it existed) stay put."""
    items = [item_id for item_id in owners if item_id in graph.row]
    if not items:
        return []
    current = [owners[item_id] for item_id in items]
    numbering = {cluster_id: n for n, cluster_id in enumerate(sorted(set(current)))}
    single = [i for i, item_id in enumerate(items) if from_scratch or item_id in free]
    node_of = np.full(len(items), -1, dtype=np.int64)
    node_of[single] = np.arange(len(single))
    cores = sorted({numbering[current[i]] for i in range(len(items)) if node_of[i] < 0})
    core_node = {cluster: len(single) + n for n, cluster in enumerate(cores)}
    for i in np.flatnonzero(node_of < 0).tolist():
        node_of[i] = core_node[numbering[current[i]]]
    rows = np.asarray([graph.row[item_id] for item_id in items], dtype=np.int64)
    local = np.full(len(graph.ids), -1, dtype=np.int64)
    local[rows] = node_of
    sources, targets = local[graph.sources.values], local[graph.targets.values]
    inside = (sources >= 0) & (targets >= 0)
    node_count = len(single) + len(cores)
    sizes = np.zeros(node_count)
    degrees = graph.degrees()
    np.add.at(sizes, node_of, degrees[rows])
    initial = np.zeros(node_count, dtype=np.int64)
    initial[node_of] = [numbering[owner] for owner in current]
    edges, weights = _summed(sources[inside], targets[inside], graph.weights.values[inside], node_count)
    membership = detect(
        node_count,
        edges,
        weights,
        initial.tolist(),
        sizes,
        scaled_resolution(resolution, len(graph.ids)),
        float(degrees.sum()),
        from_scratch,
    )
    wanted = reconcile(items, current, [membership[node] for node in node_of.tolist()])
    return [(i, o, w) for i, o, w in zip(items, current, wanted, strict=True) if o != w]


def _summed(
    sources: np.ndarray, targets: np.ndarray, weights: np.ndarray, node_count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Parallel edges (and a core's inner edges, now self-loops) summed into one: Leiden walks
    every edge of a node, and a core node would otherwise carry thousands."""
    low, high = np.minimum(sources, targets), np.maximum(sources, targets)
    pairs, inverse = np.unique(low * node_count + high, return_inverse=True)
    summed = np.bincount(inverse, weights, len(pairs))
    return np.stack([pairs // node_count, pairs % node_count], axis=1), summed


def _apply(members: dict[str, set[str]], moves: Sequence[Move]) -> dict[str, set[str]]:
    """The member sets after `moves` (clusters named by a move only get an entry)."""
    result = {cluster_id: set(ids) for cluster_id, ids in members.items()}
    for item_id, source, target in moves:
        result.setdefault(source, set()).discard(item_id)
        result.setdefault(target, set()).add(item_id)
    return result


def _state(
    cluster_id: str, ids: list[str], vectors: dict[str, np.ndarray], source_of: dict[str, str]
) -> ClusterState:
    """Members without a stored vector still count in size and sources, not in the centroid."""
    known = [i for i in ids if i in vectors]
    matrix = np.stack([vectors[i] for i in known]).astype(np.float64) if known else np.zeros((0, 1))
    total = matrix.sum(axis=0) if known else np.zeros(0)
    counts: dict[str, int] = {}
    for item_id in ids:
        counts[source_of.get(item_id, "")] = counts.get(source_of.get(item_id, ""), 0) + 1
    norm = float(np.linalg.norm(total)) if known else 0.0
    scores = matrix @ total / norm if norm > 0 else np.zeros(len(known))
    best = int(np.argmax(scores)) if known else 0
    return ClusterState(
        id=cluster_id,
        total=total,
        size=len(ids),
        central_item=known[best] if known else ids[0],
        central_score=float(scores[best]) if known else 0.0,
        source_counts=counts,
        created_at="",
    )


def build_consolidator(
    settings: Settings,
    redis: Redis,
    keys: Keys,
    embedder: Embedder | None = None,
    index: VectorIndex | None = None,
) -> Consolidator:
    """The pass over the graph of the embedder the settings name; a clusterer process passes its
    worker's embedder and index (one model and one vector replica per process)."""
    embedder = embedder or build_embedder(settings)
    return Consolidator(
        redis,
        keys,
        index or build_vector_index(settings, redis, keys, embedder),
        embedder.name,
        RedisLock(redis, keys.cluster_lock, settings.cluster_lock_ttl_ms),
        profiles_for(settings),
        build_summarizer(settings),
        neighbours=settings.cluster_neighbours,
    )


def describe(results: Sequence[PassResult]) -> str:
    """One line per kind, for the CLI."""
    if not results:
        return "nothing to consolidate"
    return "\n".join(
        json.dumps(
            {
                "kind": str(r.kind),
                "region": r.region,
                "moved": r.moved,
                "split_off": r.created,
                "merged_away": r.deleted,
                "seconds": round(r.seconds, 3),
            }
        )
        for r in results
    )
