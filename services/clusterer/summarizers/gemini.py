"""Cluster titles and summaries written by gemini-2.5-flash under a JSON response schema.

A label is a nicety, never a reason to stall clustering: any failure (quota, outage, a reply that
does not fit the schema) is logged and answered with the fallback summarizer's label instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from google.genai import types
from pydantic import BaseModel, Field

from services.clusterer.gemini_api import GEMINI, gemini_client
from services.clusterer.summarizers.base import ClusterLabel, Summarizer
from shared.models import FeedbackItem, clustering_text
from shared.retry_policy import RetryPolicy

MODEL = "gemini-2.5-flash"
ITEMS_IN_PROMPT = 12
CHARACTERS_PER_ITEM = 400
MAX_TITLE_CHARACTERS = 120
MAX_SUMMARY_CHARACTERS = 1000

log = logging.getLogger(__name__)

_INSTRUCTIONS = (
    "You triage user feedback for a software team. The reports below were grouped because they "
    "describe the same problem; the first ones are the most typical. Write a short, specific title "
    "(at most 10 words, naming the symptom and the affected feature) and a summary of 1-3 sentences "
    "saying what users experience and, if stated, when it happens. Use only facts from the reports."
)


class LabelSchema(BaseModel):
    """The response schema sent to the model; its descriptions are part of the prompt."""

    title: str = Field(description="Short, specific title of the problem, at most 10 words")
    summary: str = Field(description="1-3 sentences: what users experience and when")


class GeminiSummarizer:
    def __init__(
        self,
        api_key: str,
        fallback: Summarizer,
        base_url: str = "",
        *,
        retry: RetryPolicy | None = None,
        timeout_seconds: float = 60.0,
    ) -> None:
        self._client = gemini_client(api_key, base_url, timeout_seconds)
        self._fallback = fallback
        self._retry = retry or RetryPolicy()
        self._config = types.GenerateContentConfig(
            response_mime_type="application/json",
            response_schema=LabelSchema,
            temperature=0.2,
            max_output_tokens=512,
        )

    async def summarize(self, items: Sequence[FeedbackItem], source_counts: dict[str, int]) -> ClusterLabel:
        try:
            return await self._generate(items, source_counts)
        except Exception:
            log.exception("gemini summary failed, using the fallback label", extra={"items": len(items)})
            return await self._fallback.summarize(items, source_counts)

    async def _generate(self, items: Sequence[FeedbackItem], source_counts: dict[str, int]) -> ClusterLabel:
        response = await self._retry.call(
            GEMINI,
            lambda: self._client.aio.models.generate_content(
                model=MODEL, contents=cluster_prompt(items, source_counts), config=self._config
            ),
        )
        label = LabelSchema.model_validate_json(response.text or "")
        title, summary = label.title.strip(), label.summary.strip()
        if not title:
            raise ValueError(f"{MODEL} returned an empty title")
        return ClusterLabel(title=title[:MAX_TITLE_CHARACTERS], summary=summary[:MAX_SUMMARY_CHARACTERS])


def cluster_prompt(items: Sequence[FeedbackItem], source_counts: dict[str, int]) -> str:
    """The most central items, each cut short, and the whole cluster's counts per source."""
    reports = [
        {"source": item.source, "text": clustering_text(item.title, item.body, CHARACTERS_PER_ITEM)}
        for item in items[:ITEMS_IN_PROMPT]
    ]
    total = sum(source_counts.values())
    return (
        f"{_INSTRUCTIONS}\n\nCluster size: {total} reports, by source: {json.dumps(source_counts)}.\n"
        f"Reports (JSON):\n{json.dumps(reports, ensure_ascii=False, indent=1)}"
    )
