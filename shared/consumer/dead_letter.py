"""Dead-lettering: nothing accepted is lost, and nothing poisonous blocks the stream."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.resources import files

from redis.asyncio import Redis

from shared.consumer.config import BurialRecord, ConsumerConfig
from shared.consumer.message import StreamMessage

_SCRIPT = files("shared.consumer").joinpath("dead_letter.lua").read_text()
MAX_ERROR_CHARS = 2000


def describe(error: BaseException) -> str:
    """The reason a dead letter carries: type and message, bounded so one bad entry stays small."""
    text = f"{type(error).__name__}: {error}"
    return text[:MAX_ERROR_CHARS]


def script_for(record: BurialRecord | None) -> str:
    """The dead-letter script with the group's burial record compiled in (a no-op without one)."""
    body = record.lua if record is not None else ""
    return f"local function record_burial(id, err, dead_id, keys, args)\n{body}\nend\n{_SCRIPT}"


class DeadLetterer:
    def __init__(self, redis: Redis, config: ConsumerConfig) -> None:
        self._config = config
        self._record = config.dead_letter.record
        self._script = redis.register_script(script_for(self._record))

    async def bury(self, dead: Sequence[tuple[StreamMessage, str]]) -> None:
        """Append each entry with its reason to the dead-letter stream and ack it, atomically."""
        if not dead:
            return
        config = self._config
        record_args = list(self._record.args) if self._record is not None else []
        keys = [config.dead_letter.stream, config.stream, config.keys.errors]
        args: list[str | int] = [config.group, datetime.now(UTC).isoformat(), len(record_args), *record_args]
        for message, reason in dead:
            entry_keys = list(self._record.keys_for(message.id)) if self._record is not None else []
            keys += entry_keys
            args += [
                message.id,
                message.deliveries,
                reason,
                json.dumps(dict(message.fields)),
                len(entry_keys),
            ]
        await self._script(keys=keys, args=args)
