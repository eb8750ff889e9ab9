"""Appending raw events to `stream:ingest`: the one way any producer hands feedback to the system."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from shared.keys import SCHEMA_VERSION, IngestField, Keys


@dataclass(frozen=True)
class RawEvent:
    """One event as a producer received it; `payload` is kept verbatim so a replay sees exactly that.

    `idempotency_key` is the producer's name for this event across its retries (empty: none).
    """

    source: str
    payload: str
    request_id: str = ""
    idempotency_key: str = ""

    @classmethod
    def from_json(
        cls,
        source: str,
        payload: Mapping[str, Any] | Sequence[Any],
        request_id: str = "",
        idempotency_key: str = "",
    ) -> RawEvent:
        return cls(source, json.dumps(payload, separators=(",", ":")), request_id, idempotency_key)


class IngestPublisher:
    """Appends raw events; the ingest group does everything else."""

    def __init__(self, redis: Redis, keys: Keys, producer: str) -> None:
        self._redis = redis
        self._stream = keys.ingest_stream
        self._producer = producer

    def _fields(self, event: RawEvent) -> dict[str, str]:
        fields = {
            IngestField.VERSION: SCHEMA_VERSION,
            IngestField.SOURCE: event.source,
            IngestField.PAYLOAD: event.payload,
            IngestField.RECEIVED_AT: datetime.now(UTC).isoformat(),
            IngestField.PRODUCER: self._producer,
            IngestField.REQUEST_ID: event.request_id,
        }
        if event.idempotency_key:
            fields[IngestField.IDEMPOTENCY_KEY] = event.idempotency_key
        return fields

    async def publish(self, event: RawEvent) -> str:
        """Returns the stream entry id, which is also the event id a producer can look up."""
        entry_id: str = await self._redis.xadd(self._stream, self._fields(event))  # type: ignore[arg-type]
        return entry_id

    async def publish_many(self, events: Sequence[RawEvent]) -> list[str]:
        """One round trip for a whole batch, in order, all or nothing: a producer that retries a
        failed batch never finds half of it already accepted."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for event in events:
                pipe.xadd(self._stream, self._fields(event))  # type: ignore[arg-type]
            entry_ids: list[str] = await pipe.execute()
        return entry_ids
