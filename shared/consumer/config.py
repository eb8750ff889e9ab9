"""How one consumer reads, retries, buries and stops: small policies composed in one config.

Each policy is one decision the runtime makes, so a worker (or a test) changes one without restating
the others, and no policy knows which group uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from shared.keys import Keys
from shared.settings import Settings


@dataclass(frozen=True)
class ReadPolicy:
    """How many entries a read takes, how long it waits for them, and how many batches overlap."""

    batch_size: int = 100
    block_ms: int = 1000
    max_in_flight: int = 1


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed entry is tried again, and when trying stops.

    A failed entry stays pending; after `visibility_timeout_ms`, doubled per delivery up to
    `max_backoff_ms`, any consumer may claim it. Past `max_deliveries` it is dead-lettered.
    """

    visibility_timeout_ms: int = 60_000
    max_backoff_ms: int = 15 * 60_000
    max_deliveries: int = 6
    reclaim_interval_ms: int = 5_000

    def backoff_ms(self, deliveries: int) -> int:
        """Idle time an entry needs before its next try: the visibility timeout, doubled per delivery."""
        exponent = max(deliveries - 1, 0)
        return int(min(self.visibility_timeout_ms * 2**exponent, self.max_backoff_ms))


@dataclass(frozen=True)
class BurialRecord:
    """What a group writes beside each entry it dead-letters, in the dead-letter script itself.

    Running inside that script makes the record atomic with the dead letter and its ack: no reader
    sees an entry buried without its record, nor a record for an entry still pending. A callback in a
    MULTI could not do it, because the record names the dead letter's id, which only exists once the
    XADD has run inside the transaction.

    `lua` is the body of a function the script calls once per buried entry as
    `record_burial(id, err, dead_id, keys, args)`: the entry id, the reason it was buried, the
    dead letter's id, the keys `keys_for(id)` gave for this entry, and `args`, the same for every entry.
    It writes only the keys it was given.
    """

    lua: str
    keys_for: Callable[[str], Sequence[str]]
    args: Sequence[str | int] = ()


@dataclass(frozen=True)
class DeadLetterPolicy:
    """Where a buried entry goes (with its fields, reason and delivery count), and what else its
    group records about it."""

    stream: str
    record: BurialRecord | None = None


@dataclass(frozen=True)
class BreakerPolicy:
    """Pause the group when more than `max_dead_letters` entries are buried within `window_seconds`.

    Meant for a bad deploy (every entry fails the same way), so only failures that are not the
    entry's own fault count: bad data is dead-lettered without stopping everyone else.
    """

    max_dead_letters: int = 100
    window_seconds: float = 60.0


@dataclass(frozen=True)
class GroupKeys:
    """The runtime's own state beside the stream."""

    errors: str
    """Hash: the last error of each pending entry, carried into its dead letter."""
    paused: str
    """Present while the group is paused (by the breaker or an operator); holds the reason."""
    heartbeat: str
    """This consumer's liveness, refreshed every second while its loop runs."""


@dataclass(frozen=True)
class ConsumerConfig:
    """Who consumes which stream in which group, and the policies it follows."""

    stream: str
    group: str
    consumer: str
    keys: GroupKeys
    dead_letter: DeadLetterPolicy
    read: ReadPolicy = field(default_factory=ReadPolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)


def consumer_config(
    settings: Settings,
    keys: Keys,
    *,
    stream: str,
    group: str,
    batch_size: int,
    max_in_flight: int = 1,
    burial_record: BurialRecord | None = None,
) -> ConsumerConfig:
    """The settings-driven config every worker uses; tests build `ConsumerConfig` directly."""
    consumer = settings.consumer_name
    return ConsumerConfig(
        stream=stream,
        group=group,
        consumer=consumer,
        keys=GroupKeys(
            errors=keys.last_errors(stream, group),
            paused=keys.paused(stream, group),
            heartbeat=keys.heartbeat(stream, group, consumer),
        ),
        dead_letter=DeadLetterPolicy(keys.dead_letter_stream(stream), burial_record),
        read=ReadPolicy(batch_size, settings.read_block_ms, max_in_flight),
        retry=RetryPolicy(
            visibility_timeout_ms=settings.visibility_timeout_ms,
            max_backoff_ms=settings.max_backoff_ms,
            max_deliveries=settings.max_deliveries,
            reclaim_interval_ms=settings.reclaim_interval_ms,
        ),
        breaker=BreakerPolicy(settings.breaker_max_dead_letters, settings.breaker_window_seconds),
    )
