"""Operator tools for dead-letter streams: list, show, redrive, purge.

Redriving appends the original fields back to the source stream (the reason kept in
`redriven_error`, the dead letter's id in `redriven_from`) and deletes the dead letter, atomically, so
an entry is never in both places nor in neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from shared.keys import DeadLetterField, ProvenanceField

_DEAD_LETTER_FIELDS = {
    DeadLetterField.ORIGINAL_ID,
    DeadLetterField.GROUP,
    DeadLetterField.DELIVERIES,
    DeadLetterField.ERROR,
    DeadLetterField.FAILED_AT,
}

_REDRIVE = """
-- KEYS[1] dead-letter stream, KEYS[2] source stream; ARGV[1] dead letter id, then field/value pairs.
if redis.call('XDEL', KEYS[1], ARGV[1]) == 0 then return false end
return redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
"""


@dataclass(frozen=True)
class DeadLetter:
    id: str
    fields: dict[str, str]

    @property
    def original_fields(self) -> dict[str, str]:
        return {k: v for k, v in self.fields.items() if k not in _DEAD_LETTER_FIELDS}

    @property
    def error(self) -> str:
        return self.fields.get(DeadLetterField.ERROR, "")


class DeadLetters:
    def __init__(self, redis: Redis, source_stream: str, dead_letter_stream: str) -> None:
        self._redis = redis
        self._source = source_stream
        self._stream = dead_letter_stream
        self._redrive = redis.register_script(_REDRIVE)

    @property
    def stream(self) -> str:
        """The dead-letter stream."""
        return self._stream

    async def list(self, count: int = 50, start: str = "-") -> list[DeadLetter]:
        entries = await self._redis.xrange(self._stream, min=start, max="+", count=count)
        return [DeadLetter(entry_id, fields) for entry_id, fields in entries]

    async def show(self, dead_letter_id: str) -> DeadLetter | None:
        entries = await self._redis.xrange(self._stream, min=dead_letter_id, max=dead_letter_id)
        return DeadLetter(*entries[0]) if entries else None

    async def redrive(self, dead_letter_ids: Sequence[str]) -> dict[str, str]:
        """Dead letter id to its new entry id in the source stream; ids already gone are left out."""
        moved: dict[str, str] = {}
        for dead_letter_id in dead_letter_ids:
            letter = await self.show(dead_letter_id)
            if letter is None:
                continue
            fields = {
                **letter.original_fields,
                ProvenanceField.REDRIVEN_FROM: letter.id,
                ProvenanceField.REDRIVEN_ERROR: letter.error,
            }
            args = [letter.id] + [part for pair in fields.items() for part in pair]
            new_id = await self._redrive(keys=[self._stream, self._source], args=args)
            if new_id:
                moved[dead_letter_id] = new_id
        return moved

    async def redrive_all(self) -> dict[str, str]:
        moved: dict[str, str] = {}
        while letters := await self.list(count=500):
            moved.update(await self.redrive([letter.id for letter in letters]))
        return moved

    async def purge(self, dead_letter_ids: Sequence[str] = ()) -> int:
        """Delete the given dead letters, or all of them when none are given."""
        if dead_letter_ids:
            return int(await self._redis.xdel(self._stream, *dead_letter_ids))
        count = int(await self._redis.xlen(self._stream))
        await self._redis.delete(self._stream)
        return count
