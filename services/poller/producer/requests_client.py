"""Operator requests to producers ("sync this repository now", "poll now"), received through the API.

An admin route appends a request to the producer's request stream; a running producer long-polls
`GET /producer-requests/{producer}` (the API reads the stream with a consumer group per producer
kind) and acks each request after acting on it. A producer that dies holding a request leaves it
pending, and the API hands it to the next poller once it has been idle long enough.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.poller.producer.ingest_client import IngestApiClient

NETWORK_MARGIN_SECONDS = 10.0


@dataclass(frozen=True)
class ProducerRequest:
    id: str
    fields: dict[str, str]


class ProducerRequests:
    def __init__(self, api: IngestApiClient, producer: str, consumer: str) -> None:
        self._api = api
        self._path = f"/producer-requests/{producer}"
        self._consumer = consumer

    async def next(self, wait_seconds: float) -> list[ProducerRequest]:
        """Requests waiting for this producer; blocks on the API up to `wait_seconds` when none are."""
        response = await self._api.request(
            "GET",
            self._path,
            params={"consumer": self._consumer, "wait_seconds": f"{max(wait_seconds, 0.0):.3f}"},
            read_timeout_seconds=wait_seconds + NETWORK_MARGIN_SECONDS,
        )
        body: dict[str, Any] = response.json()
        return [ProducerRequest(str(entry["id"]), dict(entry["fields"])) for entry in body["requests"]]

    async def ack(self, request_ids: Sequence[str]) -> None:
        if request_ids:
            await self._api.request("POST", f"{self._path}/ack", json={"ids": list(request_ids)})
