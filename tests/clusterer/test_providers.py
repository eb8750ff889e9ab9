"""Choosing the production providers from settings: refused at start-up without credentials, and
wired to the configured endpoints when they are given."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
from redis.asyncio import Redis

from services.clusterer.embedders.gemini import GeminiEmbedder
from services.clusterer.providers import (
    ProviderConfigurationError,
    build_embedder,
    build_summarizer,
    build_vector_index,
)
from services.clusterer.summarizers.extractive import ExtractiveSummarizer
from services.clusterer.vector_index.base import VectorRecord
from services.clusterer.vector_index.upstash import UpstashVectorIndex
from services.dev.stand_ins.gemini_server import GeminiServer, unavailable
from services.dev.stand_ins.upstash_server import UpstashServer
from shared.keys import Keys
from shared.models import FeedbackItem
from shared.settings import Settings


@pytest.fixture
def gemini() -> Iterator[GeminiServer]:
    with GeminiServer() as running:
        yield running


@pytest.fixture
def upstash() -> Iterator[UpstashServer]:
    with UpstashServer(dimension=768) as running:
        yield running


def _production(settings: Settings, gemini: GeminiServer, upstash: UpstashServer) -> Settings:
    return settings.model_copy(
        update={
            "embedder": "gemini",
            "vector_index": "upstash",
            "summarizer": "gemini",
            "gemini_api_key": gemini.api_key,
            "gemini_base_url": gemini.url,
            "upstash_vector_rest_url": upstash.url,
            "upstash_vector_rest_token": upstash.token,
            "provider_retry_attempts": 2,
            "provider_retry_initial_delay_seconds": 0.01,
        }
    )


def test_gemini_embedder_without_an_api_key_is_refused(settings: Settings) -> None:
    with pytest.raises(ProviderConfigurationError, match="EMBEDDER=gemini needs GEMINI_API_KEY"):
        build_embedder(settings.model_copy(update={"embedder": "gemini"}))


def test_gemini_summarizer_without_an_api_key_is_refused(settings: Settings) -> None:
    with pytest.raises(ProviderConfigurationError, match="SUMMARIZER=gemini needs GEMINI_API_KEY"):
        build_summarizer(settings.model_copy(update={"summarizer": "gemini"}))


async def test_upstash_without_url_and_token_is_refused(settings: Settings, redis: Redis, keys: Keys) -> None:
    embedder = build_embedder(settings)
    with pytest.raises(
        ProviderConfigurationError,
        match="VECTOR_INDEX=upstash needs UPSTASH_VECTOR_REST_TOKEN and UPSTASH_VECTOR_REST_URL",
    ):
        build_vector_index(settings.model_copy(update={"vector_index": "upstash"}), redis, keys, embedder)


async def test_production_providers_reach_their_configured_endpoints(
    settings: Settings, redis: Redis, gemini: GeminiServer, upstash: UpstashServer
) -> None:
    production = _production(settings, gemini, upstash)
    embedder = build_embedder(production)
    index = build_vector_index(production, redis, Keys("staging:"), embedder)
    assert isinstance(embedder, GeminiEmbedder)
    assert isinstance(index, UpstashVectorIndex)
    try:
        vectors = embedder.embed(["export to CSV fails"])
        await index.upsert([VectorRecord("item-1", vectors[0], "cluster-1")])
        ((match,),) = await index.query(vectors, top_k=1)
    finally:
        await index.aclose()

    assert (match.id, match.cluster_id) == ("item-1", "cluster-1")
    assert match.score == pytest.approx(1.0, abs=1e-5)
    assert list(upstash.namespaces) == ["staging:gemini-embedding-001-768"]
    assert np.linalg.norm(vectors[0]) == pytest.approx(1.0, abs=1e-6)


async def test_gemini_summarizer_falls_back_to_the_extractive_label(
    settings: Settings, gemini: GeminiServer, upstash: UpstashServer
) -> None:
    summarizer = build_summarizer(_production(settings, gemini, upstash))
    items = [
        FeedbackItem(
            id="a",
            source="reddit",
            title="Export fails",
            body="CSV export 500s",
            created_at=datetime.now(UTC),
        )
    ]
    gemini.fail_next(unavailable(), unavailable())

    label = await summarizer.summarize(items, {"reddit": 3})

    assert label == await ExtractiveSummarizer().summarize(items, {"reddit": 3})
    assert len(gemini.requests) == 2
