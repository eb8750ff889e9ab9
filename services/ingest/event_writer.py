"""Writing normalized events to the `feedback:*` keys: one Lua call for a whole batch.

Per event the script checks the event's outcome record and the dedupe key, writes the item and its
indexes, and announces it on `stream:feedback:new`, atomically (see apply_events.lua).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.ingest.normalized import Ignored, NormalizeResult
from shared.keys import SCHEMA_VERSION, Keys

_SCRIPT = files("services.ingest").joinpath("apply_events.lua").read_text()


@dataclass(frozen=True)
class PreparedEvent:
    """One event's four KEYS and its one ARGV (a JSON array)."""

    entry_id: str
    source: str
    request_id: str
    keys: list[str]
    arg: str


@dataclass(frozen=True)
class Applied:
    entry_id: str
    source: str
    request_id: str
    status: str
    item_id: str


class EventWriter:
    def __init__(self, redis: Redis, keys: Keys, outcome_ttl_seconds: int) -> None:
        self._keys = keys
        self._script = redis.register_script(_SCRIPT)
        self._global_keys = [keys.feedback_created, keys.unclustered, keys.new_item_stream]
        self._global_args: list[str | int | float] = [outcome_ttl_seconds, keys.feedback(""), SCHEMA_VERSION]

    def _header(self, replay: bool) -> tuple[list[str], list[str | int | float]]:
        return list(self._global_keys), [*self._global_args, int(replay)]

    def prepare(self, entry_id: str, request_id: str, result: NormalizeResult) -> PreparedEvent:
        outcome_key = self._keys.event_outcomes(entry_id)
        if isinstance(result, Ignored):
            event = ["ignored", entry_id, "", "", 0, "", request_id, 0, 0, "", result.reason, {}]
            return PreparedEvent(entry_id, "", request_id, [outcome_key, "", "", ""], json.dumps(event))
        item = result.item
        dedupe_key = self._keys.feedback_external(item.source, item.external_id) if item.external_id else ""
        source_key = self._keys.feedback_source(item.source)
        keys = [outcome_key, self._keys.feedback(item.id), dedupe_key, source_key]
        fields = item.to_hash()
        event = [
            "item",
            entry_id,
            item.id,
            item.source,
            item.created_at.timestamp(),
            fields["created_at"],
            request_id,
            int(result.update_existing),
            int(result.create_if_new),
            "" if result.revision is None else str(result.revision),
            "" if result.create_if_new else "only updates a known item",
            fields,
        ]
        return PreparedEvent(entry_id, item.source, request_id, keys, json.dumps(event, ensure_ascii=False))

    async def apply(self, events: Sequence[PreparedEvent], replay: bool = False) -> list[Applied]:
        """One script call for the batch. Raises on a script error; see `apply_each`.

        `replay` re-applies events already applied once (a backfill through a newer normalizer).
        """
        keys, args = self._header(replay)
        for event in events:
            keys += event.keys
            args.append(event.arg)
        replies = await self._script(keys=keys, args=args)
        return [
            Applied(event.entry_id, event.source, event.request_id, status, item_id)
            for event, (status, item_id) in zip(events, replies, strict=True)
        ]

    async def apply_each(self, events: Sequence[PreparedEvent]) -> tuple[list[Applied], dict[str, Exception]]:
        """One call per event, so a single event the server rejects fails alone, not its whole batch."""
        applied: list[Applied] = []
        failed: dict[str, Exception] = {}
        for event in events:
            try:
                applied += await self.apply([event])
            except ResponseError as exc:
                failed[event.entry_id] = exc
        return applied, failed
