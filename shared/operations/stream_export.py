"""Exporting stream ranges to JSON Lines and importing them back (into this or another deployment).

An export writes every chosen partition's entries, partition after partition; with several
partitions each line names its partition (import ignores it: the target routes for itself, and may
have another partition count). Import appends each entry as a new one, the old id kept in
`imported_from`: ingest entries through the `IngestPublisher`, so they land in the partition the
target's publisher routes them to; new-item entries in the partition of the item they announce.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from redis.asyncio import Redis

from shared.keys import IngestField, Keys, NewItemField, ProvenanceField
from shared.operations.stream_range import entries_between
from shared.publisher import IngestPublisher, RawEvent

IMPORT_BATCH = 500
Append = Callable[[list[dict[str, str]]], Awaitable[int]]
"""Appends one batch of entries (field dicts) somewhere; returns how many."""

PUBLISHER_FIELDS = frozenset(
    {
        IngestField.VERSION,
        IngestField.SOURCE,
        IngestField.PAYLOAD,
        IngestField.REQUEST_ID,
        IngestField.IDEMPOTENCY_KEY,
        IngestField.ITEM_ID,
    }
)
"""Ingest fields the publisher writes itself (the item id is its routing decision, made again)."""


async def export_range(
    redis: Redis, stream: str, out: TextIO, start: str = "-", end: str = "+", partition: int | None = None
) -> int:
    """One `{"id": ..., "fields": {...}}` object per line (and `"partition"` when given); returns how
    many were written."""
    count = 0
    async for entry_id, fields in entries_between(redis, stream, start, end):
        record: dict[str, object] = {"id": entry_id, "fields": fields}
        if partition is not None:
            record["partition"] = partition
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def exported_entries(lines: Iterable[str]) -> Iterator[dict[str, str]]:
    """Each exported entry's fields, with its old id in `imported_from`; a bad line is a ValueError."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            fields = {str(k): str(v) for k, v in record["fields"].items()}
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as exc:
            raise ValueError(f"line {number} is not an exported entry: {exc}") from exc
        yield {**fields, ProvenanceField.IMPORTED_FROM: str(record.get("id", ""))}


async def import_lines(lines: Iterable[str], append: Append) -> int:
    """Append every exported entry, `IMPORT_BATCH` at a time (ids must grow, so they are new)."""
    batch: list[dict[str, str]] = []
    count = 0
    for fields in exported_entries(lines):
        batch.append(fields)
        if len(batch) == IMPORT_BATCH:
            count += await append(batch)
            batch = []
    return count + (await append(batch) if batch else 0)


def append_to(redis: Redis, stream: str) -> Append:
    """Verbatim into one stream, one pipeline per batch."""

    async def append(batch: list[dict[str, str]]) -> int:
        async with redis.pipeline(transaction=False) as pipe:
            for fields in batch:
                pipe.xadd(stream, fields)  # type: ignore[arg-type]
            await pipe.execute()
        return len(batch)

    return append


def append_new_items(redis: Redis, keys: Keys) -> Append:
    """Into the new-item stream of each item's partition (its id says which), one pipeline per batch."""

    async def append(batch: list[dict[str, str]]) -> int:
        async with redis.pipeline(transaction=False) as pipe:
            for fields in batch:
                pipe.xadd(new_item_stream_of(keys, fields), fields)  # type: ignore[arg-type]
            await pipe.execute()
        return len(batch)

    return append


def new_item_stream_of(keys: Keys, fields: dict[str, str]) -> str:
    if keys.partitioning.count == 1:
        return keys.new_item_stream
    item_id = fields.get(NewItemField.ID, "")
    if not item_id:
        raise ValueError(f"a new-item entry without `{NewItemField.ID}` has no partition: {fields}")
    return keys.for_item(item_id).new_item_stream


@dataclass(frozen=True)
class ImportedEvent(RawEvent):
    """A raw event read back from an export, with the original fields the publisher does not set
    (`received_at`, `producer`, provenance), kept as they were."""

    kept: tuple[tuple[str, str], ...] = ()


class ImportPublisher(IngestPublisher):
    """The deployment's publisher (its routing, its batches), keeping an imported event's fields."""

    def _fields(self, event: RawEvent) -> dict[str, str]:
        fields = super()._fields(event)
        if isinstance(event, ImportedEvent):
            fields.update(event.kept)
        return fields


def imported_event(fields: dict[str, str]) -> ImportedEvent:
    return ImportedEvent(
        source=fields.get(IngestField.SOURCE, ""),
        payload=fields.get(IngestField.PAYLOAD, ""),
        request_id=fields.get(IngestField.REQUEST_ID, ""),
        idempotency_key=fields.get(IngestField.IDEMPOTENCY_KEY, ""),
        kept=tuple((k, v) for k, v in fields.items() if k not in PUBLISHER_FIELDS),
    )


def publish_imported(publisher: IngestPublisher, route: Callable[[RawEvent], RawEvent]) -> Append:
    """Through `publish_many`, each event given its item id by `route` first (with several
    partitions the publisher routes by it): each batch lands as any producer's would."""

    async def append(batch: list[dict[str, str]]) -> int:
        events: Sequence[RawEvent] = [route(imported_event(fields)) for fields in batch]
        return len(await publisher.publish_many(events))

    return append
