"""What a handler receives and how it reports failure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class StreamMessage:
    """One stream entry as delivered to this consumer.

    `deliveries` counts this delivery too; it is 0 when unknown (an entry drained from this
    consumer's own pending list after a restart).

    Not frozen, though nothing changes it: one is made per entry read, and a frozen dataclass's
    `__init__` (a guarded `object.__setattr__` per field) costs ten times a slotted one's.
    """

    id: str
    fields: Mapping[str, str]
    deliveries: int = 1

    @property
    def timestamp_ms(self) -> int:
        """When the entry was appended: the millisecond part of its id."""
        return int(self.id.split("-", 1)[0])


class PermanentError(Exception):
    """The entry can never succeed with the code deployed (a schema version it cannot read, a stored
    record it cannot parse): dead-letter it now, no retries. Counts toward the circuit breaker, since
    many of these at once mean a bad deploy."""


class InvalidPayload(PermanentError):
    """The entry's own data is wrong and always will be: dead-letter it now, no retries. Does not count
    toward the circuit breaker: one producer's bad data must not pause the group for everyone."""


Failures = Mapping[str, Exception]
"""Entry id to the error it failed with. An entry not listed succeeded and is acked; the kind of each
error decides its fate (see the `shared.consumer` package docstring)."""


class BatchHandler(Protocol):
    """Applies the effects of a batch. Must be idempotent: any entry may be delivered again."""

    async def __call__(self, messages: Sequence[StreamMessage]) -> Failures: ...
