"""The contract every cluster summarizer meets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.models import FeedbackItem


@dataclass(frozen=True)
class ClusterLabel:
    """What a person sees for a cluster in the dashboard list."""

    title: str
    summary: str


class Summarizer(Protocol):
    """Names a cluster from its members.

    `items` come most central first (closest to the centroid), so a summarizer that only reads
    a few can take the head of the list. `source_counts` covers the WHOLE cluster (items may be
    a sample), e.g. {"reddit": 12, "github": 3}. A summarizer may be slow or fail (an LLM):
    the clusterer calls it outside its assignment lock and keeps the previous label on failure.
    """

    async def summarize(
        self, items: Sequence[FeedbackItem], source_counts: dict[str, int]
    ) -> ClusterLabel: ...
