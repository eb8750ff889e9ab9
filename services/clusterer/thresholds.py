"""Clustering settings per embedder and per KIND of text: no global constant serves them all.

Every model has its own cosine scale, and machine-generated text (error events, log lines) sits
on another scale again: distinct log templates share most of their tokens, so their embeddings
are far closer than two different human complaints. Items from the sources in
CLUSTER_MACHINE_SOURCES get the "machine" profile and cluster only with each other; every other
source is natural language. A cluster's kind is derived from the sources of its members.

Each profile has an online `join` floor (a neighbour votes for its cluster only when at least that
similar) and one consolidation method (docs/clustering.md has the measurements behind both):
- natural language: Leiden communities of the neighbour graph at `resolution`; a fixed cosine
  threshold cannot serve texts of different lengths and granularities, a graph community can;
- machine text: average linkage at `merge` (mean member-pair cosine), which measured far above
  graph communities on log templates (near-duplicate lines make the k-NN graph fall apart into
  small cliques).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from shared.settings import Settings


class TextKind(StrEnum):
    NATURAL = "natural"
    MACHINE = "machine"


@dataclass(frozen=True)
class Thresholds:
    join: float  # raw cosine a neighbour needs to vote for its cluster when an item arrives
    resolution: float = 0.0  # Leiden resolution of the consolidation pass; 0: not used
    merge: float = 0.0  # average linkage needed to merge two clusters in the pass; 0: not used


DEFAULTS: dict[str, Thresholds] = {
    "minilm": Thresholds(join=0.80, resolution=4.0),
    "hashing": Thresholds(join=0.60, resolution=4.0),
    # Not benchmarked here (no network): Gemini cosines sit higher than MiniLM's.
    "gemini": Thresholds(join=0.88, resolution=4.0),
}

MACHINE_DEFAULTS: dict[str, Thresholds] = {
    "minilm": Thresholds(join=0.85, merge=0.80),
    "hashing": Thresholds(join=0.70, merge=0.65),
    # Not benchmarked: strict, the safe side (Sentry merges error events automatically only above
    # 0.99 similarity).
    "gemini": Thresholds(join=0.90, merge=0.90),
}


@dataclass(frozen=True)
class Profiles:
    """The settings of each kind of text, and which sources produce machine text."""

    natural: Thresholds
    machine: Thresholds
    machine_sources: frozenset[str]

    def kind_of(self, sources: Iterable[str]) -> TextKind:
        """Machine only when every source is: a cluster with mixed sources (clustered before the
        profiles existed) stays natural language, the product's main input."""
        listed = list(sources)
        if listed and all(source in self.machine_sources for source in listed):
            return TextKind.MACHINE
        return TextKind.NATURAL

    def of(self, kind: TextKind) -> Thresholds:
        return self.machine if kind is TextKind.MACHINE else self.natural


def _overridden(default: Thresholds, **values: float | None) -> Thresholds:
    chosen = {name: value for name, value in values.items() if value is not None}
    return Thresholds(
        join=chosen.get("join", default.join),
        resolution=chosen.get("resolution", default.resolution),
        merge=chosen.get("merge", default.merge),
    )


def profiles_for(settings: Settings) -> Profiles:
    natural = _overridden(
        DEFAULTS[settings.embedder],
        join=settings.cluster_similarity_threshold,
        resolution=settings.cluster_resolution,
    )
    machine = _overridden(
        MACHINE_DEFAULTS[settings.embedder],
        join=settings.cluster_machine_similarity_threshold,
        merge=settings.cluster_machine_merge_threshold,
    )
    return Profiles(natural, machine, frozenset(settings.cluster_machine_sources))
