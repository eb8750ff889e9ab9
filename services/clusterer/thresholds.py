"""Similarity thresholds per embedder and per KIND of text: no global constant serves them all.

Every model has its own cosine scale, and machine-generated text (error events, log lines) sits
on another scale again: distinct log templates share most of their tokens, so their embeddings
are far closer than two different human complaints. One (join, merge) pair cannot serve both
(docs/clustering.md: HDFS wants join ~0.80 and no merging, Banking77 join 0.70 and merge 0.65),
so items from the sources in CLUSTER_MACHINE_SOURCES get the "machine" profile and cluster only
with each other; every other source is natural language. A cluster's kind is derived from the
sources of its members, so nothing new is stored and a retried batch derives the same kinds.

Defaults come from bench/cluster_quality.py on labelled data (docs/clustering.md has the tables);
CLUSTER_SIMILARITY_THRESHOLD / CLUSTER_MERGE_THRESHOLD override the natural-language profile,
CLUSTER_MACHINE_SIMILARITY_THRESHOLD / CLUSTER_MACHINE_MERGE_THRESHOLD the machine one.
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
    join: float  # raw cosine item -> cluster centroid needed to join
    merge: float  # average linkage (mean member-pair cosine) needed to merge two clusters; <= 0: never


DEFAULTS: dict[str, Thresholds] = {
    "minilm": Thresholds(join=0.70, merge=0.65),
    "hashing": Thresholds(join=0.50, merge=0.65),
    # Not benchmarked here (no network): Gemini cosines sit higher than MiniLM's.
    "gemini": Thresholds(join=0.80, merge=0.88),
}

MACHINE_DEFAULTS: dict[str, Thresholds] = {
    "minilm": Thresholds(join=0.80, merge=0.80),
    "hashing": Thresholds(join=0.70, merge=0.65),
    # Not benchmarked: stricter than Gemini's natural-language profile and no merging, the safe side
    # (Sentry itself merges error events automatically only above 0.99 similarity).
    "gemini": Thresholds(join=0.90, merge=0.0),
}


@dataclass(frozen=True)
class Profiles:
    """The thresholds of each kind of text, and which sources produce machine text."""

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

    @property
    def merges(self) -> bool:
        """Whether any kind merges at all (the merge pass is skipped otherwise)."""
        return self.natural.merge > 0 or self.machine.merge > 0


def _overridden(default: Thresholds, join: float | None, merge: float | None) -> Thresholds:
    return Thresholds(
        join=default.join if join is None else join,
        merge=default.merge if merge is None else merge,
    )


def thresholds_for(settings: Settings) -> Thresholds:
    """The natural-language profile (the one most items get)."""
    return _overridden(
        DEFAULTS[settings.embedder], settings.cluster_similarity_threshold, settings.cluster_merge_threshold
    )


def profiles_for(settings: Settings) -> Profiles:
    machine = _overridden(
        MACHINE_DEFAULTS[settings.embedder],
        settings.cluster_machine_similarity_threshold,
        settings.cluster_machine_merge_threshold,
    )
    return Profiles(thresholds_for(settings), machine, frozenset(settings.cluster_machine_sources))
