"""What a handler receives and how it reports failure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StreamMessage:
    """One stream entry as delivered to this consumer.

    `deliveries` counts this delivery too; it is 0 when unknown (an entry drained from this
    consumer's own pending list after a restart).
    """

    id: str
    fields: Mapping[str, str]
    deliveries: int = 1

    @property
    def timestamp_ms(self) -> int:
        """When the entry was appended: the millisecond part of its id."""
        return int(self.id.split("-", 1)[0])


class PermanentError(Exception):
    """The entry can never succeed (invalid payload, unknown version): dead-letter it now, no retries."""


class PayloadError(PermanentError):
    """The entry's own content can never be processed (bad data, not a bad deploy or a dependency).

    Dead letters of this kind say nothing about the health of the code, so a circuit breaker meant
    for a bad deploy should not count them."""


Failures = Mapping[str, Exception]
"""Entry id to the error it failed with. An entry not listed succeeded and is acked."""


class BatchHandler(Protocol):
    """Applies the effects of a batch. Must be idempotent: any entry may be delivered again."""

    async def __call__(self, messages: Sequence[StreamMessage]) -> Failures: ...
