"""The ingest worker: one consumer of group `ingest` on `stream:ingest` (one per partition stream).

Each raw event is normalized by its source's normalizer and encoded on its own, then the whole
batch is written by one Lua call (dedupe, item keys, indexes, new-item event, outcome record) and
acked. An event that fails to normalize or encode, whatever the exception, fails alone and is
dead-lettered at once with the reason: a pure function of its payload would fail the same way on
every retry. Anything that fails after that (Redis) is retried.

With several partitions an item's keys live in its partition's slot, and each partition's stream
is read by its own consumer: an entry whose item belongs to another partition (appended by hand to
the wrong stream, or replayed through a normalizer that now derives another id) is dead-lettered,
never written into a slot that is not its item's.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.ingest.dead_letter_outcome import dead_letter_outcome
from services.ingest.event_writer import Applied, EventWriter, PreparedEvent
from services.ingest.normalized import (
    EventContext,
    InvalidPayload,
    Normalized,
    Normalizer,
    NormalizeResult,
)
from shared import metrics
from shared.consumer import Failures, StreamConsumer, StreamMessage
from shared.consumer.config import consumer_config
from shared.keys import INGEST_GROUP, SCHEMA_VERSION, IngestField, Keys
from shared.settings import Settings

log = logging.getLogger(__name__)
ASSIGNED_ITEM_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
"""The shape of a publisher's minted item id (a uuid4, in its canonical form): it names keys."""


def received_at(message: StreamMessage) -> datetime:
    """The API's receipt time; else the entry id's own timestamp, so replays stay deterministic."""
    raw = message.fields.get(IngestField.RECEIVED_AT, "")
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return datetime.fromtimestamp(message.timestamp_ms / 1000, UTC)


class IngestHandler:
    def __init__(self, writer: EventWriter, normalizers: Mapping[str, Normalizer]) -> None:
        """The entries come from the stream of the writer's partition (the worker and replay alike)."""
        self._writer = writer
        self._normalizers = normalizers
        self._partitioning = writer.keys.partitioning
        self._partition = writer.keys.index
        self._checks_partition = self._partitioning.count > 1

    async def __call__(self, messages: Sequence[StreamMessage]) -> Failures:
        failures: dict[str, Exception] = {}
        prepared: list[PreparedEvent] = []
        for message in messages:
            try:
                prepared.append(self.prepare(message))
            except InvalidPayload as exc:
                failures[message.id] = exc
        if prepared:
            failures.update(await self._write(prepared))
        return failures

    def prepare(self, message: StreamMessage) -> PreparedEvent:
        """The event ready to write, or `InvalidPayload` with the reason, whatever went wrong."""
        try:
            result = self.normalize(message)
            if self._checks_partition and isinstance(result, Normalized):
                self._check_partition(result.item.id)
            request_id = message.fields.get(IngestField.REQUEST_ID, "")
            return self._writer.prepare(
                message.id, request_id, result, first_delivery=message.deliveries == 1
            )
        except InvalidPayload:
            raise
        except Exception as exc:
            raise InvalidPayload(f"{type(exc).__name__}: {exc}") from exc

    def _check_partition(self, item_id: str) -> None:
        owner = self._partitioning.of(item_id)
        if owner != self._partition:
            raise InvalidPayload(
                f"item {item_id} belongs to partition {owner}, not to partition {self._partition}"
                " whose stream this entry is in: it was appended to the wrong partition's stream"
                " (routed by another item id than its normalizer derives)"
            )

    def normalize(self, message: StreamMessage) -> NormalizeResult:
        fields = message.fields
        version = fields.get(IngestField.VERSION)
        if version != SCHEMA_VERSION:
            raise InvalidPayload(f"unsupported event schema version {version!r}")
        source = fields.get(IngestField.SOURCE, "")
        normalizer = self._normalizers.get(source)
        if normalizer is None:
            raise InvalidPayload(f"no normalizer for source {source!r}")
        try:
            payload = json.loads(fields.get(IngestField.PAYLOAD, ""))
        except json.JSONDecodeError as exc:
            raise InvalidPayload(f"payload is not valid JSON: {exc}") from exc
        assigned = fields.get(IngestField.ITEM_ID, "")
        if assigned and not ASSIGNED_ITEM_ID.fullmatch(assigned):
            raise InvalidPayload(f"{IngestField.ITEM_ID} {assigned[:80]!r} is not a UUID")
        try:
            context = EventContext(
                message.id, received_at(message), fields.get(IngestField.IDEMPOTENCY_KEY, ""), assigned
            )
            return normalizer(payload, context)
        except ValidationError as exc:
            raise InvalidPayload(f"{source} payload does not make a valid item: {exc}") from exc

    async def _write(self, prepared: list[PreparedEvent]) -> dict[str, Exception]:
        failed: dict[str, Exception] = {}
        try:
            applied = await self._writer.apply(prepared)
        except ResponseError:
            log.warning("batch write rejected; retrying events one by one to isolate the bad one")
            applied, failed = await self._writer.apply_each(prepared)
        record_outcomes(applied)
        return failed


def record_outcomes(applied: Sequence[Applied]) -> None:
    """Counts per source and outcome; per event at DEBUG, with the ids that trace it from the API."""
    counts = Counter((event.source or "none", event.status) for event in applied)
    for (source, status), count in counts.items():
        metrics.ingest_events_total.labels(source=source, outcome=status).inc(count)
    if log.isEnabledFor(logging.DEBUG):
        for event in applied:
            trace = {"event_id": event.entry_id, "request_id": event.request_id, "feedback_id": event.item_id}
            log.debug("ingest event %s", event.status, extra=trace)


def build_ingest_consumer(
    settings: Settings, redis: Redis, keys: Keys, normalizers: Mapping[str, Normalizer] | None = None
) -> StreamConsumer:
    """The consumer of one partition's stream: `keys` is that partition's view (`keys.partition(i)`)."""
    if normalizers is None:
        from services.ingest.normalizers import NORMALIZERS

        normalizers = NORMALIZERS
    config = consumer_config(
        settings,
        keys,
        stream=keys.ingest_stream,
        group=INGEST_GROUP,
        batch_size=settings.ingest_batch_size,
        max_in_flight=2,
        burial_record=dead_letter_outcome(keys, settings.event_outcome_ttl_seconds),
    )
    writer = EventWriter(redis, keys, settings.event_outcome_ttl_seconds)
    return StreamConsumer(redis, config, IngestHandler(writer, normalizers))
