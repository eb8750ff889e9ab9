"""The labelled data sets the clustering benchmark scores on, in the order items arrive.

Banking77 (label-sorted) is shuffled with seed 0; StackOverflow is the first
3,000 of a seed-0 sample of 5,000 titles (the set docs/clustering.md and the reference notes
measured); logs keep their time order. The data sit beside the repository
(`<repo>/../shared/datasets`).
Embeddings are cached per data set and embedder under .cache/ (gitignored): embedding is not what
the benchmark scores, and MiniLM needs minutes for all sets on two cores.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.clusterer.embedders.base import Embedder

REPO = Path(__file__).resolve().parent.parent
DATA = REPO.parent / "shared" / "datasets"
CACHE = REPO / ".cache" / "embeddings"
STACKOVERFLOW_SAMPLE = 3000
LOG_SYSTEMS = ("HDFS", "BGL", "Hadoop", "OpenStack")


@dataclass(frozen=True)
class LabelledSet:
    name: str
    texts: list[str]
    labels: list[str]


def banking77() -> LabelledSet:
    with (DATA / "banking77" / "test.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    order = np.random.default_rng(0).permutation(len(rows))
    return LabelledSet("banking77", [rows[i]["text"] for i in order], [rows[i]["category"] for i in order])


def stackoverflow() -> LabelledSet:
    titles = (DATA / "stackoverflow" / "title_StackOverflow.txt").read_text(errors="replace").splitlines()
    labels = (DATA / "stackoverflow" / "label_StackOverflow.txt").read_text().split()
    picked = np.random.default_rng(0).choice(len(titles), 5000, replace=False)[:STACKOVERFLOW_SAMPLE]
    return LabelledSet("stackoverflow3k", [titles[i] for i in picked], [labels[i] for i in picked])


def loghub(system: str) -> LabelledSet:
    with (DATA / "loghub" / f"{system}_2k.log_structured.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return LabelledSet(f"loghub-{system}", [row["Content"] for row in rows], [row["EventId"] for row in rows])


def all_sets() -> Iterator[LabelledSet]:
    yield banking77()
    yield stackoverflow()
    for system in LOG_SYSTEMS:
        yield loghub(system)


def cached_embeddings(dataset: LabelledSet, embedder: Embedder) -> np.ndarray:
    path = CACHE / f"{dataset.name}-{embedder.name}.npy"
    if path.exists():
        cached: np.ndarray = np.load(path)
        return cached
    vectors = embedder.embed(dataset.texts)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


if __name__ == "__main__":
    import sys

    from services.clusterer.embedders.hashing import HashingEmbedder
    from services.clusterer.embedders.minilm import MiniLMEmbedder

    chosen: Embedder = MiniLMEmbedder() if sys.argv[1:] == ["minilm"] else HashingEmbedder()
    for labelled in all_sets():
        print(labelled.name, cached_embeddings(labelled, chosen).shape, flush=True)
