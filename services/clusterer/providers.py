"""Choosing the embedder, vector index and summarizer from settings (EMBEDDER, VECTOR_INDEX, SUMMARIZER).

Imports stay inside each branch: the offline defaults never load the Gemini or Upstash clients.
"""

from __future__ import annotations

from redis.asyncio import Redis

from services.clusterer.embedders.base import Embedder
from services.clusterer.summarizers.base import Summarizer
from services.clusterer.vector_index.base import VectorIndex
from shared.keys import Keys
from shared.retry_policy import RetryPolicy
from shared.settings import Settings


class ProviderConfigurationError(ValueError):
    """A production provider was chosen without its credentials: fail at start-up, not on the first batch."""


def _require(choice: str, **variables: str) -> None:
    missing = sorted(name for name, value in variables.items() if not value)
    if missing:
        raise ProviderConfigurationError(f"{choice} needs {' and '.join(missing)} to be set")


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "hashing":
        from services.clusterer.embedders.hashing import HashingEmbedder

        return HashingEmbedder()
    if settings.embedder == "gemini":
        from services.clusterer.embedders.gemini import GeminiEmbedder

        _require("EMBEDDER=gemini", GEMINI_API_KEY=settings.gemini_api_key)
        return GeminiEmbedder(
            settings.gemini_api_key,
            settings.gemini_base_url,
            retry=RetryPolicy.from_settings(settings),
            timeout_seconds=settings.provider_timeout_seconds,
        )
    from services.clusterer.embedders.minilm import MiniLMEmbedder

    return MiniLMEmbedder()


def build_vector_index(settings: Settings, redis: Redis, keys: Keys, embedder: Embedder) -> VectorIndex:
    """One index per embedder (its name), so vectors of different models are never compared."""
    if settings.vector_index == "upstash":
        from services.clusterer.vector_index.upstash import UpstashVectorIndex

        _require(
            "VECTOR_INDEX=upstash",
            UPSTASH_VECTOR_REST_URL=settings.upstash_vector_rest_url,
            UPSTASH_VECTOR_REST_TOKEN=settings.upstash_vector_rest_token,
        )
        return UpstashVectorIndex(
            settings.upstash_vector_rest_url,
            settings.upstash_vector_rest_token,
            f"{keys.prefix}{embedder.name}",  # the namespace: one per embedder and deployment
            retry=RetryPolicy.from_settings(settings),
            timeout_seconds=settings.provider_timeout_seconds,
        )
    from services.clusterer.vector_index.local_copy import IndexTuning
    from services.clusterer.vector_index.redis_index import RedisVectorIndex, SnapshotPolicy
    from shared.redis_connection import binary_twin

    return RedisVectorIndex(
        binary_twin(redis),
        keys,
        embedder.name,
        embedder.dimensions,
        IndexTuning(ann_min=settings.vector_ann_min, search_ef=settings.vector_search_ef),
        SnapshotPolicy(every=settings.vector_snapshot_every),
    )


def build_summarizer(settings: Settings) -> Summarizer:
    from services.clusterer.summarizers.extractive import ExtractiveSummarizer

    extractive = ExtractiveSummarizer()
    if settings.summarizer == "gemini":
        from services.clusterer.summarizers.gemini import GeminiSummarizer

        _require("SUMMARIZER=gemini", GEMINI_API_KEY=settings.gemini_api_key)
        return GeminiSummarizer(
            settings.gemini_api_key,
            extractive,
            settings.gemini_base_url,
            retry=RetryPolicy.from_settings(settings),
            timeout_seconds=settings.provider_timeout_seconds,
        )
    return extractive
