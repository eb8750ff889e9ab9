"""The Upstash vector index through the real upstash-vector SDK against a local Upstash REST API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest
from upstash_vector.errors import UpstashError

from services.clusterer.vector_index.base import VectorRecord
from services.clusterer.vector_index.upstash import QUERY_BATCH, UPSERT_BATCH, UpstashVectorIndex
from services.dev.stand_ins.scripted_http_server import Reply
from services.dev.stand_ins.upstash_server import UpstashServer, bad_gateway_page, rate_limited, server_error
from shared.retry_policy import RemoteUnavailableError, RetryPolicy
from tests.support.paths import FIXTURES as ALL_FIXTURES

DIMENSION = 8
FAST = RetryPolicy(attempts=3, initial_delay_seconds=0.01, max_delay_seconds=2.0)
FIXTURES = ALL_FIXTURES / "upstash"


@pytest.fixture
def server() -> Iterator[UpstashServer]:
    with UpstashServer(DIMENSION) as running:
        yield running


@pytest.fixture
async def index(server: UpstashServer) -> AsyncIterator[UpstashVectorIndex]:
    index = UpstashVectorIndex(server.url, server.token, "gemini-embedding-001-768", retry=FAST)
    yield index
    await index.aclose()


def _axis(position: int, weight: float = 1.0, other: int | None = None) -> np.ndarray:
    """A unit vector mostly along one axis; with `other`, cos to _axis(position) is `weight`."""
    vector = np.zeros(DIMENSION, dtype=np.float32)
    vector[position] = weight
    if other is not None:
        vector[other] = np.sqrt(1 - weight**2)
    return vector


def _random_unit_rows(count: int, seed: int = 7) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((count, DIMENSION)).astype(np.float32)
    normalised: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


async def test_scores_are_raw_cosine_not_upstash_normalised(index: UpstashVectorIndex) -> None:
    await index.upsert(
        [
            VectorRecord("same", _axis(0), "c1"),
            VectorRecord("close", _axis(0, 0.6, other=1), "c2"),
            VectorRecord("orthogonal", _axis(2), "c3"),
            VectorRecord("opposite", -_axis(0), "c4"),
        ]
    )

    (matches,) = await index.query(_axis(0)[None, :], top_k=10)

    assert [(match.id, match.cluster_id) for match in matches] == [
        ("same", "c1"),
        ("close", "c2"),
        ("orthogonal", "c3"),
        ("opposite", "c4"),
    ]
    np.testing.assert_allclose([match.score for match in matches], [1.0, 0.6, 0.0, -1.0], atol=1e-6)


async def test_a_batch_of_queries_goes_as_query_many_arrays_of_bounded_size(
    server: UpstashServer, index: UpstashVectorIndex
) -> None:
    rows = _random_unit_rows(2 * QUERY_BATCH + 50)
    await index.upsert([VectorRecord(f"item-{n}", row, f"cluster-{n}") for n, row in enumerate(rows)])

    results = await index.query(rows, top_k=3)

    queries = server.requests_to("/query/gemini-embedding-001-768")
    assert [len(request.body) for request in queries] == [QUERY_BATCH, QUERY_BATCH, 50]
    assert all(request.body[0]["includeMetadata"] and request.body[0]["topK"] == 3 for request in queries)
    assert [matches[0].id for matches in results] == [f"item-{n}" for n in range(len(rows))]
    assert all(len(matches) == 3 for matches in results)


async def test_empty_index_gives_empty_lists_and_no_rows_give_no_request(
    server: UpstashServer, index: UpstashVectorIndex
) -> None:
    assert await index.query(_random_unit_rows(2), top_k=5) == [[], []]
    requests_so_far = len(server.requests)

    assert await index.query(np.zeros((0, DIMENSION), dtype=np.float32), top_k=5) == []
    assert len(server.requests) == requests_so_far


async def test_each_index_lives_in_its_own_namespace(
    server: UpstashServer, index: UpstashVectorIndex
) -> None:
    other = UpstashVectorIndex(server.url, server.token, "staging:all-MiniLM-L6-v2", retry=FAST)
    try:
        await index.upsert([VectorRecord("a", _axis(0), "c1")])
        await other.upsert([VectorRecord("b", _axis(0), "c9")])

        ((mine,),) = await index.query(_axis(0)[None, :], 5)
        ((theirs,),) = await other.query(_axis(0)[None, :], 5)
    finally:
        await other.aclose()

    assert (mine.id, theirs.id) == ("a", "b")
    assert set(server.namespaces) == {"gemini-embedding-001-768", "staging:all-MiniLM-L6-v2"}


async def test_upserting_an_id_again_replaces_its_vector_and_cluster(index: UpstashVectorIndex) -> None:
    await index.upsert([VectorRecord("a", _axis(0), "c1")])
    await index.upsert([VectorRecord("a", _axis(1), "c2")])

    ((match,),) = await index.query(_axis(1)[None, :], 5)

    assert (match.id, match.cluster_id, round(match.score, 6)) == ("a", "c2", 1.0)


async def test_upserts_are_split_into_bounded_requests(
    server: UpstashServer, index: UpstashVectorIndex
) -> None:
    rows = _random_unit_rows(UPSERT_BATCH + 1)

    await index.upsert([VectorRecord(str(n), row, "c") for n, row in enumerate(rows)])

    upserts = server.requests_to("/upsert/gemini-embedding-001-768")
    assert [len(request.body) for request in upserts] == [UPSERT_BATCH, 1]
    assert upserts[0].body[0]["metadata"] == {"cluster_id": "c"}


async def test_reassign_moves_vectors_to_another_cluster_in_two_calls(
    server: UpstashServer, index: UpstashVectorIndex
) -> None:
    await index.upsert([VectorRecord("a", _axis(0), "old"), VectorRecord("b", _axis(1), "old")])
    requests_before = len(server.requests)

    await index.reassign(["a", "b", "never-upserted"], "merged")

    assert len(server.requests) - requests_before == 2
    results = await index.query(np.stack([_axis(0), _axis(1)]), top_k=1)
    assert [(matches[0].id, matches[0].cluster_id) for matches in results] == [
        ("a", "merged"),
        ("b", "merged"),
    ]
    stored = server.namespaces["gemini-embedding-001-768"]
    np.testing.assert_allclose(stored["a"].vector, _axis(0))
    assert "never-upserted" not in stored


async def test_rate_limits_wait_for_retry_after(server: UpstashServer, index: UpstashVectorIndex) -> None:
    limited = rate_limited()
    server.fail_next(Reply(limited.status, limited.body, headers={"Retry-After": "1"}))

    await index.upsert([VectorRecord("a", _axis(0), "c1")])

    first, second = server.requests
    assert second.received_at - first.received_at >= 1.0  # the backoff alone would wait ~0.01 s
    assert "a" in server.namespaces["gemini-embedding-001-768"]


@pytest.mark.parametrize("failure", [rate_limited(), server_error(), bad_gateway_page()])
async def test_transient_statuses_are_retried(
    server: UpstashServer, index: UpstashVectorIndex, failure: Reply
) -> None:
    await index.upsert([VectorRecord("a", _axis(0), "c1")])
    server.fail_next(failure)

    (matches,) = await index.query(_axis(0)[None, :], 5)

    assert [match.id for match in matches] == ["a"]
    assert len(server.requests_to("/query/gemini-embedding-001-768")) == 2


async def test_gives_up_after_the_last_attempt_with_a_clear_error(
    server: UpstashServer, index: UpstashVectorIndex
) -> None:
    server.fail_next(server_error(), server_error(), server_error(), server_error())

    with pytest.raises(RemoteUnavailableError, match=r"upstash-vector: gave up after 3 attempts.*HTTP 500"):
        await index.upsert([VectorRecord("a", _axis(0), "c1")])
    assert len(server.requests) == 3


async def test_a_wrong_token_is_not_retried(server: UpstashServer) -> None:
    index = UpstashVectorIndex(server.url, "wrong-token", "ns", retry=FAST)
    try:
        with pytest.raises(UpstashError, match="Unauthorized"):
            await index.upsert([VectorRecord("a", _axis(0), "c1")])
    finally:
        await index.aclose()
    assert len(server.requests) == 1


async def test_a_vector_of_the_wrong_size_is_not_retried(
    server: UpstashServer, index: UpstashVectorIndex
) -> None:
    with pytest.raises(UpstashError, match="Invalid vector dimension"):
        await index.upsert([VectorRecord("a", np.ones(3, dtype=np.float32), "c1")])
    assert len(server.requests) == 1


async def test_neighbours_without_our_cluster_metadata_are_left_out(
    server: UpstashServer, index: UpstashVectorIndex
) -> None:
    """The documented query reply (foreign metadata, none at all) parses, and matches nothing."""
    documented = json.loads((FIXTURES / "query_response.json").read_text())
    server.fail_next(Reply(200, documented))

    assert await index.query(_axis(0)[None, :], 5) == [[]]


async def test_stored_vectors_come_back_by_id_and_missing_ids_are_left_out(index: UpstashVectorIndex) -> None:
    await index.upsert([VectorRecord("a", _axis(0), "c1"), VectorRecord("b", _axis(2, 0.6, 3), "c1")])

    found = await index.vectors(["b", "missing", "a"])

    assert sorted(found) == ["a", "b"]
    assert np.allclose(found["a"], _axis(0)) and np.allclose(found["b"], _axis(2, 0.6, 3))
