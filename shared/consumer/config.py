"""How one consumer reads, retries and gives up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.keys import Keys
from shared.settings import Settings


@dataclass(frozen=True)
class ConsumerConfig:
    stream: str
    group: str
    dead_letter_stream: str
    consumer: str
    errors_key: str
    batch_size: int = 100
    block_ms: int = 1000
    visibility_timeout_ms: int = 60_000
    max_backoff_ms: int = 15 * 60_000
    max_deliveries: int = 6
    reclaim_interval_ms: int = 5_000
    heartbeat_key: str = ""
    paused_key: str = ""
    max_in_flight: int = 1
    breaker_max_dead_letters: int = 100
    breaker_window_seconds: float = 60.0
    outcome_key: Callable[[str], str] | None = None
    outcome_ttl_seconds: int = 7 * 24 * 3600

    def backoff_ms(self, deliveries: int) -> int:
        """Idle time an entry needs before its next try: the visibility timeout, doubled per delivery."""
        exponent = max(deliveries - 1, 0)
        return int(min(self.visibility_timeout_ms * 2**exponent, self.max_backoff_ms))


def consumer_config(
    settings: Settings,
    keys: Keys,
    *,
    stream: str,
    group: str,
    batch_size: int,
    max_in_flight: int = 1,
    outcome_key: Callable[[str], str] | None = None,
) -> ConsumerConfig:
    """The settings-driven config every worker uses; tests build `ConsumerConfig` directly."""
    consumer = settings.consumer_name
    return ConsumerConfig(
        stream=stream,
        group=group,
        dead_letter_stream=keys.dead_letter_stream(stream),
        consumer=consumer,
        errors_key=keys.last_errors(stream, group),
        batch_size=batch_size,
        max_in_flight=max_in_flight,
        breaker_max_dead_letters=settings.breaker_max_dead_letters,
        breaker_window_seconds=settings.breaker_window_seconds,
        block_ms=settings.read_block_ms,
        visibility_timeout_ms=settings.visibility_timeout_ms,
        max_backoff_ms=settings.max_backoff_ms,
        max_deliveries=settings.max_deliveries,
        reclaim_interval_ms=settings.reclaim_interval_ms,
        heartbeat_key=keys.heartbeat(stream, group, consumer),
        paused_key=keys.paused(stream, group),
        outcome_key=outcome_key,
        outcome_ttl_seconds=settings.event_outcome_ttl_seconds,
    )
