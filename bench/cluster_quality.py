"""Clustering quality of the real clusterer on labelled sets, beside KMeans on the same embeddings.

Prints ARI, NMI and the cluster count per data set and embedder for each (join, merge) threshold
pair asked for, and KMeans with the true k (n_init=3, seed 0) as the offline reference.

    .venv/bin/python -m bench.cluster_quality                       # defaults, both embedders
    .venv/bin/python -m bench.cluster_quality --embedder hashing --join 0.3 0.4 --merge 0 0.5
"""

from __future__ import annotations

import argparse
import asyncio

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from bench.clusterer_run import PrecomputedEmbedder, cluster_texts, throwaway_redis
from bench.labelled_sets import CACHE, LabelledSet, all_sets
from services.clusterer.thresholds import DEFAULTS

EMBEDDER_NAMES = {"hashing": "hashing-1024", "minilm": "all-MiniLM-L6-v2"}


def kmeans_labels(vectors: np.ndarray, k: int) -> np.ndarray:
    labels: np.ndarray = KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(vectors)
    return labels


def score(truth: list[str], predicted: list[str] | np.ndarray) -> str:
    ari = adjusted_rand_score(truth, predicted)
    nmi = normalized_mutual_info_score(truth, predicted)
    return f"ARI {ari:.3f}  NMI {nmi:.3f}  clusters {len(set(predicted)):5d}"


async def main(embedders: list[str], joins: list[float] | None, merges: list[float] | None) -> None:
    with throwaway_redis() as url:
        for family in embedders:
            for dataset in all_sets():
                await report(url, family, dataset, joins, merges)


async def report(
    url: str, family: str, dataset: LabelledSet, joins: list[float] | None, merges: list[float] | None
) -> None:
    path = CACHE / f"{dataset.name}-{EMBEDDER_NAMES[family]}.npy"
    if not path.exists():
        print(f"{family:8s} {dataset.name:18s} not cached: run python -m bench.labelled_sets {family}")
        return
    vectors = np.load(path)
    embedder = PrecomputedEmbedder(EMBEDDER_NAMES[family], dataset.texts, vectors)
    true_k = len(set(dataset.labels))
    reference = score(dataset.labels, kmeans_labels(vectors, true_k))
    print(f"{family:8s} {dataset.name:18s} KMeans k={true_k:<4d}        {reference}")
    for join in joins or [DEFAULTS[family].join]:
        for merge in merges or [DEFAULTS[family].merge]:
            update = {
                "embedder": family,
                "cluster_similarity_threshold": join,
                "cluster_merge_threshold": merge,
            }
            clusters, seconds = await cluster_texts(url, dataset.texts, embedder, update)
            print(
                f"{family:8s} {dataset.name:18s} join {join:.2f} merge {merge:.2f}  "
                f"{score(dataset.labels, clusters)}  ({len(clusters) / seconds:,.0f} items/s)",
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", nargs="*", default=list(EMBEDDER_NAMES), choices=list(EMBEDDER_NAMES))
    parser.add_argument("--join", nargs="*", type=float)
    parser.add_argument("--merge", nargs="*", type=float)
    args = parser.parse_args()
    asyncio.run(main(args.embedder, args.join, args.merge))
