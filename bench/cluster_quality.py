"""Clustering quality of the real clusterer on labelled sets, beside KMeans on the same embeddings.

For every set: KMeans with the true k (n_init=3, seed 0) as the offline reference, then the
clusterer's ARI, NMI and cluster count at three moments: at drain (online assignment plus the
passes that ran during the drain), after the debounced pass that follows the drain (its seconds
are printed: debounce + pass seconds must stay under 30), and after a full pass.

The log sets are fed as source "sentry" (a machine-text source by default, so they get the
machine profile); Banking77 and StackOverflow as source "reddit" (natural language). --resolution
and --join sweep the natural-language profile, --machine-join and --machine-merge the machine one.

    .venv/bin/python -m bench.labelled_sets minilm                  # once: cache the embeddings
    .venv/bin/python -m bench.cluster_quality                       # defaults, MiniLM
    .venv/bin/python -m bench.cluster_quality --sets natural --resolution 4 6 8
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from bench.clusterer_run import PrecomputedEmbedder, cluster_texts, throwaway_redis
from bench.labelled_sets import CACHE, LabelledSet, all_sets
from services.clusterer.thresholds import DEFAULTS, MACHINE_DEFAULTS
from shared.settings import Settings

EMBEDDER_NAMES = {"hashing": "hashing-1024", "minilm": "all-MiniLM-L6-v2"}
MACHINE_SOURCE = "sentry"
NATURAL_SOURCE = "reddit"


def kmeans_labels(vectors: np.ndarray, k: int) -> np.ndarray:
    labels: np.ndarray = KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(vectors)
    return labels


def score(truth: list[str], predicted: list[str] | np.ndarray) -> str:
    ari = adjusted_rand_score(truth, predicted)
    nmi = normalized_mutual_info_score(truth, predicted)
    return f"ARI {ari:.3f} NMI {nmi:.3f} n {len(set(predicted)):4d}"


def is_machine_text(dataset: LabelledSet) -> bool:
    return dataset.name.startswith("loghub-")


def settings_grid(family: str, machine: bool, args: argparse.Namespace) -> list[dict[str, object]]:
    """Each combination asked for, as settings overrides (an empty sweep: the default)."""
    if machine:
        default = MACHINE_DEFAULTS[family]
        names = ("cluster_machine_similarity_threshold", "cluster_machine_merge_threshold")
        values = (args.machine_join or [default.join], args.machine_merge or [default.merge])
    else:
        default = DEFAULTS[family]
        names = ("cluster_similarity_threshold", "cluster_resolution")
        values = (args.join or [default.join], args.resolution or [default.resolution])
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


async def report(url: str, family: str, dataset: LabelledSet, args: argparse.Namespace) -> None:
    path = CACHE / f"{dataset.name}-{EMBEDDER_NAMES[family]}.npy"
    if not path.exists():
        print(f"{dataset.name:17s} not cached: run python -m bench.labelled_sets {family}")
        return
    vectors = np.load(path)
    embedder = PrecomputedEmbedder(EMBEDDER_NAMES[family], dataset.texts, vectors)
    true_k = len(set(dataset.labels))
    machine = is_machine_text(dataset)
    print(
        f"{dataset.name:17s} k={true_k:<4d} KMeans {score(dataset.labels, kmeans_labels(vectors, true_k))}",
        flush=True,
    )
    debounce = Settings().cluster_pass_debounce_seconds
    for update in settings_grid(family, machine, args):
        stages = await cluster_texts(
            url,
            dataset.texts,
            embedder,
            {"embedder": family, **update},
            source=MACHINE_SOURCE if machine else NATURAL_SOURCE,
        )
        chosen = " ".join(f"{name.removeprefix('cluster_')}={value}" for name, value in update.items())
        print(
            f"  {chosen}\n"
            f"    at drain   {score(dataset.labels, stages.at_drain)}"
            f"  ({stages.drain_seconds:.1f} s, {stages.passes_during_drain} passes during the drain)\n"
            f"    30 s after {score(dataset.labels, stages.after_pass)}"
            f"  (settled {debounce + stages.pass_seconds:.1f} s after the drain)\n"
            f"    full pass  {score(dataset.labels, stages.after_full)}",
            flush=True,
        )


async def main(args: argparse.Namespace) -> None:
    print(
        f"log sets fed as source {MACHINE_SOURCE!r} (machine profile); "
        f"Banking77 / StackOverflow as source {NATURAL_SOURCE!r} (natural-language profile)"
    )
    with throwaway_redis() as url:
        for family in args.embedder:
            print(f"embedder {family}")
            for dataset in all_sets():
                if args.sets == "all" or (args.sets == "loghub") == is_machine_text(dataset):
                    await report(url, family, dataset, args)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", nargs="*", default=["minilm"], choices=list(EMBEDDER_NAMES))
    parser.add_argument("--sets", default="all", choices=["all", "loghub", "natural"])
    parser.add_argument("--join", nargs="*", type=float, help="natural-language profile")
    parser.add_argument("--resolution", nargs="*", type=float, help="natural-language profile")
    parser.add_argument("--machine-join", nargs="*", type=float)
    parser.add_argument("--machine-merge", nargs="*", type=float)
    asyncio.run(main(parser.parse_args()))
