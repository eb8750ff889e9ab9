"""The API's request id and event id travel with the event through both groups."""

from __future__ import annotations

import logging

import httpx
import pytest
from redis.asyncio import Redis

from services.clusterer.worker import trace_items
from shared.consumer import StreamMessage
from shared.keys import Keys
from shared.settings import Settings
from tests.support.pipeline import running_pipeline


async def test_request_and_event_ids_reach_the_new_item_event(redis: Redis, settings: Settings) -> None:
    with running_pipeline(settings) as pipeline:
        async with httpx.AsyncClient(base_url=pipeline.api_url) as api:
            response = await api.post(
                "/ingest/manual", json={"text": "tracing"}, headers={"X-Request-ID": "req-42"}
            )
        assert response.headers["X-Request-ID"] == "req-42"
        pipeline.wait_until_ingested()
    [(_, announced)] = await redis.xrange(Keys().new_item_stream)
    assert announced["request_id"] == "req-42"
    assert announced["event_id"] == response.json()["event_id"]


def test_clusterer_logs_each_item_with_its_trace_ids(caplog: pytest.LogCaptureFixture) -> None:
    message = StreamMessage("5-0", {"id": "item-1", "event_id": "4-0", "request_id": "req-42"})
    with caplog.at_level(logging.DEBUG, logger="services.clusterer.worker"):
        trace_items([message], {})
    [record] = caplog.records
    assert (record.feedback_id, record.event_id, record.request_id) == ("item-1", "4-0", "req-42")  # type: ignore[attr-defined]
