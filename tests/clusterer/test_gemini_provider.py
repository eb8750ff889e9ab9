"""The Gemini embedder and summarizer through the real google-genai SDK against a local Gemini API."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import numpy as np
import pytest
from google.genai import errors

from services.clusterer.embedders.gemini import DIMENSIONS, MAX_TEXTS_PER_CALL, GeminiEmbedder
from services.clusterer.gemini_api import requested_delay
from services.clusterer.summarizers.base import ClusterLabel
from services.clusterer.summarizers.gemini import GeminiSummarizer
from services.dev.stand_ins.gemini_server import GeminiServer, quota_exhausted, text_vector, unavailable
from shared.models import FeedbackItem
from shared.retry_policy import RemoteUnavailableError, RetryPolicy
from tests.support.paths import FIXTURES as ALL_FIXTURES

FIXTURES = ALL_FIXTURES / "gemini"
FAST = RetryPolicy(attempts=3, initial_delay_seconds=0.01, max_delay_seconds=2.0)


@pytest.fixture
def server() -> Iterator[GeminiServer]:
    with GeminiServer() as running:
        yield running


@pytest.fixture
def embedder(server: GeminiServer) -> GeminiEmbedder:
    return GeminiEmbedder(server.api_key, server.url, retry=FAST)


def _unit(vector: list[float]) -> np.ndarray:
    array = np.asarray(vector, dtype=np.float32)
    return array / np.linalg.norm(array)


def test_batches_hold_at_most_100_texts_and_rows_keep_their_order(
    server: GeminiServer, embedder: GeminiEmbedder
) -> None:
    texts = [f"feedback number {index}" for index in range(250)]

    vectors = embedder.embed(texts)

    assert [len(batch) for batch in server.embedded_batches()] == [MAX_TEXTS_PER_CALL, MAX_TEXTS_PER_CALL, 50]
    assert vectors.dtype == np.float32
    assert vectors.shape == (250, DIMENSIONS)
    np.testing.assert_allclose(vectors[137], _unit(text_vector(texts[137], DIMENSIONS)), rtol=1e-5)


def test_requests_ask_for_768_clustering_vectors_of_the_named_model(
    server: GeminiServer, embedder: GeminiEmbedder
) -> None:
    embedder.embed(["the app crashes on login"])

    (request,) = server.requests
    assert request.path == "/v1/models/gemini-embedding-001:batchEmbedContents"
    assert request.headers["x-goog-api-key"] == server.api_key
    (item,) = request.body["requests"]
    assert item["taskType"] == "CLUSTERING"
    assert item["outputDimensionality"] == DIMENSIONS
    assert item["model"] == "models/gemini-embedding-001"
    assert embedder.name == "gemini-embedding-001-768"


def test_rows_are_unit_length_and_blank_texts_stay_zero_without_being_sent(
    server: GeminiServer, embedder: GeminiEmbedder
) -> None:
    vectors = embedder.embed(["checkout button does nothing", "   ", "", "dark mode please"])

    assert server.embedded_batches() == [["checkout button does nothing", "dark mode please"]]
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), [1.0, 0.0, 0.0, 1.0], atol=1e-6)


def test_a_quota_429_waits_the_delay_the_server_asked_for(
    server: GeminiServer, embedder: GeminiEmbedder
) -> None:
    server.fail_next(quota_exhausted("0.4s"))

    vectors = embedder.embed(["sync stalls"])

    first, second = server.requests
    assert second.received_at - first.received_at >= 0.4  # the backoff alone would wait ~0.01 s
    assert vectors.shape == (1, DIMENSIONS)


def test_a_requested_delay_longer_than_the_policy_allows_is_capped(server: GeminiServer) -> None:
    embedder = GeminiEmbedder(server.api_key, server.url, retry=RetryPolicy(3, 0.01, max_delay_seconds=0.05))
    server.fail_next(quota_exhausted("3600s"))

    embedder.embed(["sync stalls"])

    first, second = server.requests
    assert second.received_at - first.received_at < 60


def test_server_errors_are_retried_with_backoff(server: GeminiServer, embedder: GeminiEmbedder) -> None:
    server.fail_next(unavailable(), unavailable())

    embedder.embed(["search is slow"])

    assert len(server.requests) == 3


def test_gives_up_after_the_last_attempt_with_a_clear_error(
    server: GeminiServer, embedder: GeminiEmbedder
) -> None:
    server.fail_next(unavailable(), unavailable(), unavailable(), unavailable())

    with pytest.raises(RemoteUnavailableError, match=r"gemini: gave up after 3 attempts.*503"):
        embedder.embed(["search is slow"])
    assert len(server.requests) == 3


def test_client_errors_are_not_retried(server: GeminiServer) -> None:
    embedder = GeminiEmbedder("wrong-key", server.url, retry=FAST)

    with pytest.raises(errors.ClientError, match="API key not valid"):
        embedder.embed(["anything"])
    assert len(server.requests) == 1


def test_the_sdk_environment_variable_can_point_the_client_at_another_endpoint(
    server: GeminiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", server.url)

    GeminiEmbedder(server.api_key, retry=FAST).embed(["hello"])

    assert len(server.requests) == 1


def test_retry_delay_is_read_from_a_real_quota_error_body() -> None:
    body = json.loads((FIXTURES / "error_429.json").read_text())

    assert requested_delay(errors.ClientError(429, body)) == 53.0
    assert requested_delay(errors.ServerError(503, {"error": {"code": 503, "status": "UNAVAILABLE"}})) is None


class FirstTitleSummarizer:
    """A recognisable fallback, so tests can tell whose label came back."""

    async def summarize(self, items: Sequence[FeedbackItem], source_counts: dict[str, int]) -> ClusterLabel:
        return ClusterLabel(
            title=f"fallback: {items[0].title}", summary=f"{sum(source_counts.values())} reports"
        )


def _items() -> list[FeedbackItem]:
    now = datetime(2026, 11, 28, tzinfo=UTC)
    return [
        FeedbackItem(
            id="a", source="reddit", title="Can't log in", body="Login spins forever", created_at=now
        ),
        FeedbackItem(
            id="b", source="github", title="Login timeout", body="OAuth callback hangs", created_at=now
        ),
    ]


@pytest.fixture
def summarizer(server: GeminiServer) -> GeminiSummarizer:
    return GeminiSummarizer(server.api_key, FirstTitleSummarizer(), server.url, retry=FAST)


async def test_summary_comes_from_the_json_reply_under_a_response_schema(
    server: GeminiServer, summarizer: GeminiSummarizer
) -> None:
    label = await summarizer.summarize(_items(), {"reddit": 7, "github": 2})

    assert label == ClusterLabel(title="Login fails", summary="Users cannot log in.")
    (request,) = server.requests
    assert request.path == "/v1/models/gemini-2.5-flash:generateContent"
    config = request.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert set(config["responseSchema"]["properties"]) == {"title", "summary"}
    assert config["temperature"] == 0.2
    prompt = request.body["contents"][0]["parts"][0]["text"]
    assert "Login spins forever" in prompt
    assert '{"reddit": 7, "github": 2}' in prompt


@pytest.mark.parametrize(
    "reply",
    ["not json at all", json.dumps({"title": "only a title"}), json.dumps({"title": "  ", "summary": "x"})],
)
async def test_a_reply_that_does_not_fit_the_schema_falls_back(
    server: GeminiServer, summarizer: GeminiSummarizer, reply: str
) -> None:
    server.label_reply = reply

    label = await summarizer.summarize(_items(), {"reddit": 1, "github": 1})

    assert label == ClusterLabel(title="fallback: Can't log in", summary="2 reports")


async def test_an_unavailable_gemini_falls_back_after_its_retries(
    server: GeminiServer, summarizer: GeminiSummarizer
) -> None:
    server.fail_next(unavailable(), unavailable(), unavailable())

    label = await summarizer.summarize(_items(), {"reddit": 1, "github": 1})

    assert label.title == "fallback: Can't log in"
    assert len(server.requests) == FAST.attempts


async def test_a_transient_failure_is_retried_before_falling_back(
    server: GeminiServer, summarizer: GeminiSummarizer
) -> None:
    server.fail_next(quota_exhausted("0.05s"))

    label = await summarizer.summarize(_items(), {"reddit": 1, "github": 1})

    assert label.title == "Login fails"
