"""Reads that span partitions (INGEST_PARTITIONS=3, tagged names on one redis-server) answer exactly
what one partition answers for the same items: same pages, cursors, totals and counts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.api.feedback_rows import MAX_MERGED_OFFSET
from shared.keys import Keys
from shared.settings import Settings
from tests.api.conftest import client_for
from tests.support.partitioned_feedback import sample_items, write_items

PARTITIONS = 3
ITEMS = sample_items(40)


@pytest.fixture
async def split(settings: Settings, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    """The API on 3 partitions, over ITEMS written into them."""
    partitioned = settings.model_copy(update={"ingest_partitions": PARTITIONS})
    await write_items(redis, partitioned.keys(), ITEMS, unclustered=10)
    async for client in client_for(partitioned):
        yield client


@pytest.fixture
async def single(settings: Settings, redis: Redis) -> AsyncIterator[httpx.AsyncClient]:
    """The API on one partition (another key prefix, same Redis), over the same items."""
    reference = settings.model_copy(update={"key_prefix": "ref:"})
    await write_items(redis, reference.keys(), ITEMS, unclustered=10)
    async for client in client_for(reference):
        yield client


async def all_pages(api: httpx.AsyncClient, limit: int, **query: str) -> list[dict[str, Any]]:
    pages, cursor = [], None
    while True:
        params = {"limit": str(limit), **query, **({"cursor": cursor} if cursor else {})}
        response = await api.get("/feedback", params=params)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages


async def test_the_items_really_are_spread_over_the_partitions(
    split: httpx.AsyncClient, redis: Redis
) -> None:
    keys = Keys(partitioning=Settings(ingest_partitions=PARTITIONS).partitioning)
    sizes = [await redis.zcard(part.feedback_created) for part in keys.partitions]
    assert sum(sizes) == len(ITEMS) and all(sizes), sizes


@pytest.mark.parametrize("source", [None, "github"])
async def test_cursor_pages_match_one_partition(
    split: httpx.AsyncClient, single: httpx.AsyncClient, source: str | None
) -> None:
    query = {"source": source} if source else {}
    pages = await all_pages(split, 7, **query)
    assert pages == await all_pages(single, 7, **query)
    shown = [item["id"] for page in pages for item in page["items"]]
    expected = [i for i in ITEMS if source in (None, i.source)]
    assert sorted(shown) == sorted(i.id for i in expected) and len(set(shown)) == len(shown)
    assert {page["total"] for page in pages} == {len(expected)}


async def test_offset_pages_match_one_partition(split: httpx.AsyncClient, single: httpx.AsyncClient) -> None:
    for offset in (0, 5, 17, 38, 40):
        params = {"limit": "6", "offset": str(offset)}
        answer = (await split.get("/feedback", params=params)).json()
        assert answer == (await single.get("/feedback", params=params)).json(), offset


async def test_a_cursor_inside_a_tie_across_partitions_resumes_after_it(split: httpx.AsyncClient) -> None:
    """Items 1 and 2 share a time; a page ending on the first of them continues with the second."""
    newest_first = sorted(ITEMS, key=lambda i: (i.created_at.timestamp(), i.id), reverse=True)
    for cut in range(1, len(newest_first)):
        last = newest_first[cut - 1]
        cursor = f"{last.created_at.timestamp()!r}:{last.id}"
        page = (await split.get("/feedback", params={"limit": "2", "cursor": cursor})).json()
        assert [item["id"] for item in page["items"]] == [i.id for i in newest_first[cut : cut + 2]]


async def test_a_large_offset_over_partitions_asks_for_the_cursor(split: httpx.AsyncClient) -> None:
    response = await split.get("/feedback", params={"offset": str(MAX_MERGED_OFFSET + 1)})
    assert response.status_code == 400 and "cursor" in response.json()["detail"]


async def test_one_item_is_read_from_its_partition(split: httpx.AsyncClient) -> None:
    for item in ITEMS[:6]:
        response = await split.get(f"/feedback/{item.id}")
        assert response.status_code == 200 and response.json()["title"] == item.title
    assert (await split.get("/feedback/not-an-item")).status_code == 404


async def test_stats_sum_every_partition(split: httpx.AsyncClient, single: httpx.AsyncClient) -> None:
    stats = (await split.get("/stats")).json()
    assert stats["feedback"] == (await single.get("/stats")).json()["feedback"]
    assert stats["feedback"]["total"] == len(ITEMS) and stats["feedback"]["unclustered"] == 10
    assert stats["feedback"]["by_source"]["github"] == sum(1 for i in ITEMS if i.source == "github")
    keys = Settings(ingest_partitions=PARTITIONS).keys()
    assert [s["stream"] for s in stats["streams"]] == [*keys.ingest_streams, *keys.new_item_streams]


async def test_the_unclustered_gauge_sums_every_partition(split: httpx.AsyncClient) -> None:
    metrics = (await split.get("/metrics")).text
    [line] = [line for line in metrics.splitlines() if line.startswith("soulcaster_unclustered_items ")]
    assert float(line.split()[1]) == 10


async def test_an_event_is_found_in_whichever_partition_holds_it(
    split: httpx.AsyncClient, redis: Redis
) -> None:
    keys = Settings(ingest_partitions=PARTITIONS).keys()
    recorded, waiting = "1767312000000-0", "1767312000001-0"
    await redis.hset(
        keys.partition(2).event_outcomes(recorded),
        recorded,
        json.dumps({"status": "created", "feedback_id": ITEMS[0].id}),
    )
    await redis.xadd(keys.partition(1).ingest_stream, {"v": "1"}, id=waiting)

    found = (await split.get(f"/ingest/events/{recorded}")).json()
    assert found == {"event_id": recorded, "status": "created", "feedback_id": ITEMS[0].id}
    assert (await split.get(f"/ingest/events/{waiting}")).json()["status"] == "pending"
    assert (await split.get("/ingest/events/1767312000002-0")).status_code == 404
