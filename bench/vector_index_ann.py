"""Scalable vector index candidates (issue 13) against today's exact search, in the same run.

    OPENBLAS_NUM_THREADS=2 nice .venv/bin/python -m bench.vector_index_ann --size 100000
    OPENBLAS_NUM_THREADS=2 nice .venv/bin/python -m bench.vector_index_ann --size 1000000 \
        --methods exact hnsw-16-100 ivf-1024

The default index before issue 13 (services/clusterer/vector_index/redis_index.py; still its path
below VECTOR_ANN_MIN items) kept every vector in each replica's memory and answered by one numpy
matrix product: exact, but 1.5 GB per replica at 1M items of 384 floats and a full log replay at
start. The candidates here are ANN indexes that can be built
once, persisted and loaded (hnswlib HNSW, faiss IVF-Flat and IVF-SQ8). For each: build time, memory
(RSS growth while building, and the persisted size), load time from disk, time per batch of 64
queries, and recall@10 against the exact top 10 of the same queries.

The data imitates sentence embeddings: unit vectors around a few thousand topic centres of uneven
size, with a shared offset (MiniLM's vectors are not centred), queried by new items from the same
distribution. `--real DIR` instead builds the corpus from cached MiniLM embeddings of the labelled
sets (bench/labelled_sets.py writes them), each jittered into several near-copies to reach the size.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import os
import platform
import tempfile
import time
from argparse import Namespace
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DIMENSIONS = 384
BATCH = 64
TOP_K = 10
THREADS = 2
DEFAULT_METHODS = (
    "exact",
    "hnsw-16-100",
    "hnsw-32-200",
    "ivf-1024",
    "ivf-sq8-1024",
)
HNSW_EF = (32, 64, 128)
IVF_NPROBE = (8, 32, 64)


@dataclass(frozen=True)
class Row:
    method: str
    search: str
    build_s: float
    rss_mb: float
    size_mb: float
    load_s: float
    batch_ms: float
    recall: float


def rss_mb() -> float:
    """Resident memory now, from /proc (the platform is Linux): the build's growth is its cost.

    The heap is trimmed first, so memory freed by the previous index is handed back rather than
    reused unseen by the next one (which would make its growth look smaller than it is).
    """
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with Path("/proc/self/statm").open() as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def normalised(vectors: np.ndarray) -> np.ndarray:
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def synthetic(count: int, queries: int, centres: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clustered unit vectors: same-topic cosine about 0.5, other topics about 0.1, like MiniLM."""
    rng = np.random.default_rng(seed)
    topics = normalised(rng.standard_normal((centres, DIMENSIONS), dtype=np.float32))
    offset = normalised(rng.standard_normal((1, DIMENSIONS), dtype=np.float32)) * 0.35
    weights = 1.0 / np.arange(1, centres + 1) ** 0.8  # a few big topics, a long tail
    weights /= weights.sum()
    total = count + queries
    out = np.empty((total, DIMENSIONS), dtype=np.float32)
    for start in range(0, total, 100_000):
        stop = min(start + 100_000, total)
        picked = rng.choice(centres, stop - start, p=weights)
        noise = rng.standard_normal((stop - start, DIMENSIONS), dtype=np.float32) / np.sqrt(DIMENSIONS)
        out[start:stop] = normalised(topics[picked] + offset + noise)
    rng.shuffle(out)
    return out[:count], out[count:]


def real_ish(directory: Path, count: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cached MiniLM vectors, each jittered into near-copies (cosine ~0.9 to its source) up to `count`."""
    rng = np.random.default_rng(seed)
    sources = np.concatenate([np.load(path).astype(np.float32) for path in sorted(directory.glob("*.npy"))])
    picked = rng.integers(0, len(sources), count + queries)
    noise = rng.standard_normal((count + queries, DIMENSIONS), dtype=np.float32) * (
        0.45 / np.sqrt(DIMENSIONS)
    )
    out = normalised((sources[picked] + noise).astype(np.float32))  # a float64 scale would widen it
    return out[:count], out[count:]


def exact_top(base: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """What redis_index.py does: one matrix product per batch, then the top k by argpartition."""
    scores = queries @ base.T
    best = np.argpartition(-scores, TOP_K - 1, axis=1)[:, :TOP_K]
    order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1)
    return np.take_along_axis(best, order, axis=1)


def batched(search: Callable[[np.ndarray], np.ndarray], queries: np.ndarray) -> tuple[np.ndarray, float]:
    """Answers for every query and the median wall time of one batch of 64, in milliseconds."""
    answers, times = [], []
    for start in range(0, len(queries), BATCH):
        began = time.perf_counter()
        answers.append(search(queries[start : start + BATCH]))
        times.append(time.perf_counter() - began)
    return np.concatenate(answers), float(np.median(times) * 1000)


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(
        len(set(row_found) & set(row_truth)) for row_found, row_truth in zip(found, truth, strict=True)
    )
    return hits / truth.size


def hnsw_rows(
    method: str, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, efs: list[int]
) -> list[Row]:
    import hnswlib  # type: ignore[import-not-found]

    _, links, construction = method.split("-")
    before, began = rss_mb(), time.perf_counter()
    index = hnswlib.Index(space="ip", dim=DIMENSIONS)
    index.init_index(max_elements=len(base), M=int(links), ef_construction=int(construction))
    index.set_num_threads(THREADS)
    index.add_items(base, np.arange(len(base)))
    build_s, grown = time.perf_counter() - began, rss_mb() - before
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "index.bin")
        index.save_index(path)
        size = Path(path).stat().st_size / 2**20
        del index
        began = time.perf_counter()
        index = hnswlib.Index(space="ip", dim=DIMENSIONS)
        index.load_index(path)
        load_s = time.perf_counter() - began
    rows = []
    for ef in efs:
        index.set_ef(ef)
        found, batch_ms = batched(
            lambda batch: index.knn_query(batch, k=TOP_K, num_threads=THREADS)[0], queries
        )
        rows.append(
            Row(method, f"ef={ef}", build_s, grown, size, load_s, batch_ms, recall_at_k(found, truth))
        )
    return rows


def faiss_rows(
    method: str, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, nprobes: list[int]
) -> list[Row]:
    import faiss  # type: ignore[import-not-found]

    faiss.omp_set_num_threads(THREADS)
    lists = int(method.rsplit("-", 1)[1])
    encoding = "SQ8" if "sq8" in method else "Flat"
    before, began = rss_mb(), time.perf_counter()
    index = faiss.index_factory(DIMENSIONS, f"IVF{lists},{encoding}", faiss.METRIC_INNER_PRODUCT)
    sample = np.random.default_rng(1).choice(len(base), min(len(base), 64 * lists), replace=False)
    index.train(base[np.sort(sample)])
    index.add(base)
    build_s, grown = time.perf_counter() - began, rss_mb() - before
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "index.faiss")
        faiss.write_index(index, path)
        size = Path(path).stat().st_size / 2**20
        del index
        began = time.perf_counter()
        index = faiss.read_index(path)
        load_s = time.perf_counter() - began
    rows = []
    for probes in nprobes:
        faiss.ParameterSpace().set_index_parameter(index, "nprobe", probes)
        found, batch_ms = batched(lambda batch: index.search(batch, TOP_K)[1], queries)
        rows.append(
            Row(method, f"nprobe={probes}", build_s, grown, size, load_s, batch_ms, recall_at_k(found, truth))
        )
    return rows


def exact_row(base: np.ndarray, queries: np.ndarray) -> tuple[Row, np.ndarray]:
    before, began = rss_mb(), time.perf_counter()
    matrix = np.ascontiguousarray(base.copy())  # the replica's copy, as the log replay builds it
    build_s, grown = time.perf_counter() - began, rss_mb() - before
    truth, batch_ms = batched(lambda batch: exact_top(matrix, batch), queries)
    size = matrix.nbytes / 2**20
    return Row("exact (numpy)", "matrix product", build_s, grown, size, float("nan"), batch_ms, 1.0), truth


def measure(
    method: str, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, args: Namespace
) -> list[Row]:
    if method.startswith("hnsw-"):
        return hnsw_rows(method, base, queries, truth, args.ef)
    if method.startswith("ivf-"):
        return faiss_rows(method, base, queries, truth, args.nprobe)
    raise SystemExit(f"unknown method {method!r}: hnsw-M-EFC, ivf-NLIST or ivf-sq8-NLIST")


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'method':<14} {'search':<15} {'build s':>8} {'RSS +MB':>8} {'file MB':>8} "
        f"{'load s':>7} {'ms/64q':>8} {'recall@10':>9}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        load = "-" if np.isnan(row.load_s) else f"{row.load_s:.2f}"
        print(
            f"{row.method:<14} {row.search:<15} {row.build_s:>8.1f} {row.rss_mb:>8.0f} {row.size_mb:>8.0f} "
            f"{load:>7} {row.batch_ms:>8.1f} {row.recall:>9.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=640, help="new items searched, in batches of 64")
    parser.add_argument("--centres", type=int, default=3000, help="topics of the synthetic corpus")
    parser.add_argument("--real", type=Path, help="a folder of cached MiniLM .npy embeddings")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS))
    parser.add_argument("--ef", type=int, nargs="+", default=list(HNSW_EF), help="HNSW search breadths")
    parser.add_argument("--nprobe", type=int, nargs="+", default=list(IVF_NPROBE), help="IVF lists probed")
    args = parser.parse_args()

    if args.real:
        base, queries = real_ish(args.real, args.size, args.queries)
        corpus = f"MiniLM embeddings from {args.real}, jittered"
    else:
        base, queries = synthetic(args.size, args.queries, args.centres)
        corpus = f"synthetic, {args.centres} topics"
    print(
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC  {platform.node()}  "
        f"{len(base):,} x {DIMENSIONS} float32 ({corpus}); {len(queries)} queries in batches of {BATCH}; "
        f"top {TOP_K}; {THREADS} threads; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    rows: list[Row] = []
    truth = np.empty(0)
    for method in args.methods:
        if method == "exact":
            row, truth = exact_row(base, queries)
            rows.append(row)
        else:
            if truth.size == 0:
                raise SystemExit("list `exact` first: it is the baseline and gives the true top 10")
            rows.extend(measure(method, base, queries, truth, args))
        print(f"  done: {method}", flush=True)
    print_table(rows)


if __name__ == "__main__":
    main()
