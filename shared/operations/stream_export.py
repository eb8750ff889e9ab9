"""Exporting a stream range to JSON Lines and importing it back (into this or another deployment)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TextIO

from redis.asyncio import Redis

from shared.keys import ProvenanceField
from shared.operations.stream_range import entries_between

IMPORT_BATCH = 500


async def export_range(redis: Redis, stream: str, out: TextIO, start: str = "-", end: str = "+") -> int:
    """One `{"id": ..., "fields": {...}}` object per line; returns how many were written."""
    count = 0
    async for entry_id, fields in entries_between(redis, stream, start, end):
        out.write(json.dumps({"id": entry_id, "fields": fields}, ensure_ascii=False) + "\n")
        count += 1
    return count


async def import_lines(redis: Redis, stream: str, lines: Iterable[str]) -> int:
    """Append each exported entry as a new entry (ids must grow, so the old id goes in a field)."""
    batch: list[dict[str, str]] = []
    count = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            fields = {str(k): str(v) for k, v in record["fields"].items()}
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as exc:
            raise ValueError(f"line {number} is not an exported entry: {exc}") from exc
        batch.append({**fields, ProvenanceField.IMPORTED_FROM: str(record.get("id", ""))})
        if len(batch) == IMPORT_BATCH:
            count += await _append(redis, stream, batch)
            batch = []
    return count + await _append(redis, stream, batch)


async def _append(redis: Redis, stream: str, batch: list[dict[str, str]]) -> int:
    if not batch:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for fields in batch:
            pipe.xadd(stream, fields)
        await pipe.execute()
    return len(batch)
