"""The default summarizer: no model, no network, cheap enough to refresh on every join.

The title is the most central item's title (the report that best represents the group), and the
summary says how many reports came from where, then quotes the start of that item's body.
"""

from __future__ import annotations

from collections.abc import Sequence

from services.clusterer.summarizers.base import ClusterLabel
from shared.models import FeedbackItem

TITLE_CHARS = 80
QUOTE_CHARS = 280
UNTITLED = "Feedback cluster"


class ExtractiveSummarizer:
    async def summarize(self, items: Sequence[FeedbackItem], source_counts: dict[str, int]) -> ClusterLabel:
        central = items[0] if items else None
        title = (central.title.strip() if central else "") or UNTITLED
        total = sum(source_counts.values())
        by_source = ", ".join(
            f"{count} {source}"
            for source, count in sorted(source_counts.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        summary = f"{total} report{'s' if total != 1 else ''} ({by_source})."
        quote = " ".join(central.body.split())[:QUOTE_CHARS] if central else ""
        return ClusterLabel(title[:TITLE_CHARS], f"{summary} {quote}".strip())
