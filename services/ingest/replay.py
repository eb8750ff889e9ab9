"""Replaying a range of `stream:ingest` through the current normalizers: backfill after a change.

With several partitions each partition's stream is replayed on its own, by a writer of that
partition (`replay_partitions`): an entry is applied in the partition it was routed to, whose
script holds its item's keys.

Live groups are left alone: the range is read with XRANGE, normalized again and applied in replay
mode (a known item is rewritten in place only where a field changed; an event that failed before
and now normalizes creates its item). Running the same replay twice changes nothing the second time.
A dry run asks the same script what replay mode would do, in a mode that writes nothing, so the
prediction cannot drift from the real replay's decisions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from redis.asyncio import Redis

from services.ingest.event_writer import EventWriter, PreparedEvent, Shadow
from services.ingest.normalized import Normalizer
from services.ingest.worker import IngestHandler
from shared.consumer import StreamMessage
from shared.keys import Keys
from shared.operations.stream_range import entries_between

BATCH = 500


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
        self._prepare = IngestHandler(writer, normalizers).prepare
        self._writer = writer

    async def replay(self, start: str = "-", end: str = "+", dry_run: bool = False) -> ReplayReport:
        report = ReplayReport()
        shadow: Shadow = {}
        batch: list[PreparedEvent] = []
        async for entry_id, fields in entries_between(self._redis, self._keys.ingest_stream, start, end):
            try:
                batch.append(self._prepare(StreamMessage(entry_id, fields)))
            except Exception as exc:
                report.invalid[entry_id] = f"{type(exc).__name__}: {exc}"
            if len(batch) == BATCH:
                await self._flush(batch, report, shadow if dry_run else None)
                batch = []
        await self._flush(batch, report, shadow if dry_run else None)
        return report

    async def _flush(self, batch: list[PreparedEvent], report: ReplayReport, shadow: Shadow | None) -> None:
        """Apply the batch in replay mode, or with a `shadow` predict it (extending the shadow)."""
        if not batch:
            return
        if shadow is None:
            applied = await self._writer.apply(batch, replay=True)
        else:
            applied = await self._writer.predict(batch, shadow)
        report.outcomes.update(event.status for event in applied)


async def replay_partitions(
    redis: Redis,
    partitions: Sequence[Keys],
    normalizers: Mapping[str, Normalizer],
    outcome_ttl_seconds: int,
    span: tuple[str, str] = ("-", "+"),
    dry_run: bool = False,
) -> ReplayReport:
    """Each partition in turn, the reports summed; an invalid entry is named by its event id,
    `<partition>:<entry id>` with several partitions (entry ids are unique per stream only)."""
    total = ReplayReport()
    for part in partitions:
        writer = EventWriter(redis, part, outcome_ttl_seconds)
        report = await Replayer(redis, part, normalizers, writer).replay(*span, dry_run=dry_run)
        total.outcomes.update(report.outcomes)
        for entry_id, reason in report.invalid.items():
            total.invalid[part.partitioning.event_id(part.index, entry_id)] = reason
    return total
