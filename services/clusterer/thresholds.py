"""Similarity thresholds per embedder: every model has its own cosine scale, so no global constant.

Defaults come from bench/cluster_quality.py on labelled data (docs/clustering.md has the tables);
CLUSTER_SIMILARITY_THRESHOLD and CLUSTER_MERGE_THRESHOLD override them.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.settings import Settings


@dataclass(frozen=True)
class Thresholds:
    join: float  # raw cosine item -> cluster centroid needed to join
    merge: float  # average linkage (mean member-pair cosine) needed to merge two clusters; <= 0: never


DEFAULTS: dict[str, Thresholds] = {
    "minilm": Thresholds(join=0.70, merge=0.65),
    "hashing": Thresholds(join=0.50, merge=0.65),
    # Not benchmarked here (no network): Gemini cosines sit higher than MiniLM's.
    "gemini": Thresholds(join=0.80, merge=0.88),
}


def thresholds_for(settings: Settings) -> Thresholds:
    default = DEFAULTS[settings.embedder]
    join = settings.cluster_similarity_threshold
    merge = settings.cluster_merge_threshold
    return Thresholds(
        join=default.join if join is None else join,
        merge=default.merge if merge is None else merge,
    )
