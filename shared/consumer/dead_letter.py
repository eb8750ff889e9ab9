"""Dead-lettering: nothing accepted is lost, and nothing poisonous blocks the stream."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib.resources import files

from redis.asyncio import Redis

from shared.consumer.config import ConsumerConfig
from shared.consumer.message import StreamMessage

_SCRIPT = files("shared.consumer").joinpath("dead_letter.lua").read_text()
MAX_ERROR_CHARS = 2000


def describe(error: BaseException) -> str:
    """The reason a dead letter carries: type and message, bounded so one bad entry stays small."""
    text = f"{type(error).__name__}: {error}"
    return text[:MAX_ERROR_CHARS]


class DeadLetterer:
    def __init__(self, redis: Redis, config: ConsumerConfig) -> None:
        self._config = config
        self._script = redis.register_script(_SCRIPT)

    async def bury(self, dead: Sequence[tuple[StreamMessage, str]]) -> None:
        """Append each entry with its reason to the dead-letter stream and ack it, atomically."""
        if not dead:
            return
        config = self._config
        record = config.outcome_key is not None
        keys = [config.dead_letter_stream, config.stream, config.errors_key]
        if config.outcome_key is not None:
            keys += [config.outcome_key(message.id) for message, _ in dead]
        args: list[str | int] = [
            config.group,
            datetime.now(UTC).isoformat(),
            config.outcome_ttl_seconds,
            "1" if record else "0",
        ]
        for message, reason in dead:
            args += [message.id, message.deliveries, reason, json.dumps(dict(message.fields))]
        await self._script(keys=keys, args=args)
