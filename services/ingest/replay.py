"""Replaying a range of `stream:ingest` through the current normalizers: backfill after a change.

Live groups are left alone: the range is read with XRANGE, normalized again and applied in replay
mode (a known item is rewritten in place only where a field changed; an event that failed before
and now normalizes creates its item). Running the same replay twice changes nothing the second time.
A dry run applies nothing and reports what would change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis

from services.ingest.event_writer import EventWriter, PreparedEvent
from services.ingest.normalized import Ignored, Normalized, Normalizer, NormalizeResult
from services.ingest.worker import IngestHandler
from shared.consumer import StreamMessage
from shared.keys import IngestField, Keys
from shared.operations.stream_range import entries_between

BATCH = 500
UPDATABLE = (
    "title",
    "body",
    "raw_text",
    "metadata",
    "status",
    "repo",
    "github_issue_number",
    "github_issue_url",
)


@dataclass
class ReplayReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    invalid: dict[str, str] = field(default_factory=dict)

    @property
    def entries(self) -> int:
        return sum(self.outcomes.values()) + len(self.invalid)


class Replayer:
    def __init__(
        self, redis: Redis, keys: Keys, normalizers: Mapping[str, Normalizer], writer: EventWriter
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._normalize = IngestHandler(writer, normalizers).normalize
        self._writer = writer

    async def replay(self, start: str = "-", end: str = "+", dry_run: bool = False) -> ReplayReport:
        report = ReplayReport()
        batch: list[tuple[StreamMessage, NormalizeResult]] = []
        async for entry_id, fields in entries_between(self._redis, self._keys.ingest_stream, start, end):
            message = StreamMessage(entry_id, fields)
            try:
                batch.append((message, self._normalize(message)))
            except Exception as exc:
                report.invalid[entry_id] = f"{type(exc).__name__}: {exc}"
            if len(batch) == BATCH:
                await self._flush(batch, report, dry_run)
                batch = []
        await self._flush(batch, report, dry_run)
        return report

    async def _flush(
        self, batch: list[tuple[StreamMessage, NormalizeResult]], report: ReplayReport, dry_run: bool
    ) -> None:
        if not batch:
            return
        if dry_run:
            report.outcomes.update(await self._predict(batch))
            return
        prepared: list[PreparedEvent] = [
            self._writer.prepare(m.id, m.fields.get(IngestField.REQUEST_ID, ""), result)
            for m, result in batch
        ]
        applied = await self._writer.apply(prepared, replay=True)
        report.outcomes.update(event.status for event in applied)

    async def _predict(self, batch: list[tuple[StreamMessage, NormalizeResult]]) -> list[str]:
        """What replay mode would do, read from the stored items without writing anything."""
        items = [result for _, result in batch if isinstance(result, Normalized)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for normalized in items:
                pipe.hmget(self._keys.feedback(normalized.item.id), list(UPDATABLE))
            stored = iter(await pipe.execute())
        predictions = []
        for _, result in batch:
            if isinstance(result, Ignored):
                predictions.append("ignored")
                continue
            current = next(stored)
            new = result.item.to_hash()
            if all(value is None for value in current):
                predictions.append("created" if result.create_if_new else "ignored")
            elif any(
                new.get(name) not in (None, value) for name, value in zip(UPDATABLE, current, strict=True)
            ):
                predictions.append("updated")
            else:
                predictions.append("unchanged")
        return predictions
