"""Clustering quality of the real clusterer on labelled sets, beside KMeans on the same embeddings.

Prints ARI, NMI and the cluster count per data set and embedder for each (join, merge) threshold
pair asked for, and KMeans with the true k (n_init=3, seed 0) as the offline reference.

The log sets are fed as source "sentry" (a machine-text source by default, so they get the
machine profile); Banking77 and StackOverflow as source "reddit" (natural language). --join and
--merge sweep the natural-language profile on the natural sets, --machine-join and --machine-merge
the machine profile on the log sets.

    .venv/bin/python -m bench.cluster_quality                       # defaults, both embedders
    .venv/bin/python -m bench.cluster_quality --embedder minilm --sets loghub \\
        --machine-join 0.75 0.80 --machine-merge 0 0.7
"""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from bench.clusterer_run import PrecomputedEmbedder, cluster_texts, throwaway_redis
from bench.labelled_sets import CACHE, LabelledSet, all_sets
from services.clusterer.thresholds import DEFAULTS, MACHINE_DEFAULTS, Thresholds

EMBEDDER_NAMES = {"hashing": "hashing-1024", "minilm": "all-MiniLM-L6-v2"}
MACHINE_SOURCE = "sentry"
NATURAL_SOURCE = "reddit"


@dataclass(frozen=True)
class Sweep:
    """Threshold values to try per profile; None: the embedder's default."""

    joins: list[float] | None
    merges: list[float] | None
    machine_joins: list[float] | None
    machine_merges: list[float] | None


def kmeans_labels(vectors: np.ndarray, k: int) -> np.ndarray:
    labels: np.ndarray = KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(vectors)
    return labels


def score(truth: list[str], predicted: list[str] | np.ndarray) -> str:
    ari = adjusted_rand_score(truth, predicted)
    nmi = normalized_mutual_info_score(truth, predicted)
    return f"ARI {ari:.3f}  NMI {nmi:.3f}  clusters {len(set(predicted)):5d}"


def is_machine_text(dataset: LabelledSet) -> bool:
    return dataset.name.startswith("loghub-")


async def main(embedders: list[str], sets: str, sweep: Sweep) -> None:
    print(
        f"log sets fed as source {MACHINE_SOURCE!r} (machine profile); "
        f"Banking77 / StackOverflow as source {NATURAL_SOURCE!r} (natural-language profile)"
    )
    with throwaway_redis() as url:
        for family in embedders:
            for dataset in all_sets():
                if sets == "all" or (sets == "loghub") == is_machine_text(dataset):
                    await report(url, family, dataset, sweep)


def _grid(default: Thresholds, joins: list[float] | None, merges: list[float] | None) -> list[Thresholds]:
    return [
        Thresholds(join, merge) for join in joins or [default.join] for merge in merges or [default.merge]
    ]


async def report(url: str, family: str, dataset: LabelledSet, sweep: Sweep) -> None:
    path = CACHE / f"{dataset.name}-{EMBEDDER_NAMES[family]}.npy"
    if not path.exists():
        print(f"{family:8s} {dataset.name:18s} not cached: run python -m bench.labelled_sets {family}")
        return
    vectors = np.load(path)
    embedder = PrecomputedEmbedder(EMBEDDER_NAMES[family], dataset.texts, vectors)
    true_k = len(set(dataset.labels))
    reference = score(dataset.labels, kmeans_labels(vectors, true_k))
    machine = is_machine_text(dataset)
    source, profile = (MACHINE_SOURCE, "machine") if machine else (NATURAL_SOURCE, "natural")
    print(f"{family:8s} {dataset.name:18s} KMeans k={true_k:<4d}                {reference}")
    if machine:
        grid = _grid(MACHINE_DEFAULTS[family], sweep.machine_joins, sweep.machine_merges)
    else:
        grid = _grid(DEFAULTS[family], sweep.joins, sweep.merges)
    for thresholds in grid:
        prefix = "cluster_machine_" if machine else "cluster_"
        update = {
            "embedder": family,
            f"{prefix}similarity_threshold": thresholds.join,
            f"{prefix}merge_threshold": thresholds.merge,
        }
        clusters, seconds = await cluster_texts(url, dataset.texts, embedder, update, source=source)
        pair = f"join {thresholds.join:.2f} merge {thresholds.merge:.2f}"
        print(
            f"{family:8s} {dataset.name:18s} {profile:7s} {pair}  "
            f"{score(dataset.labels, clusters)}  ({len(clusters) / seconds:,.0f} items/s)",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", nargs="*", default=list(EMBEDDER_NAMES), choices=list(EMBEDDER_NAMES))
    parser.add_argument("--sets", default="all", choices=["all", "loghub", "natural"])
    parser.add_argument("--join", nargs="*", type=float, help="natural-language profile")
    parser.add_argument("--merge", nargs="*", type=float, help="natural-language profile")
    parser.add_argument("--machine-join", nargs="*", type=float)
    parser.add_argument("--machine-merge", nargs="*", type=float)
    args = parser.parse_args()
    sweep = Sweep(args.join, args.merge, args.machine_join, args.machine_merge)
    asyncio.run(main(args.embedder, args.sets, sweep))
