"""One consumer-group runtime for every worker: read, handle, ack, reclaim, dead-letter, shut down.

The contract between the runtime and a group's handler:

Delivery
    At least once. Any entry may reach a handler again: after a crash, a lost connection, a failed
    try, or on another consumer that reclaimed it. Entries of one batch arrive in stream order, and
    batches are handed over in read order.

What a handler may do
    Apply the batch's effects to Redis or elsewhere, idempotently (the same entry twice leaves the
    same state as once), and return the entries that failed. It must not ack, claim or dead-letter
    entries itself, nor keep an entry for later: once it returns, the runtime owns the outcome.

What an ack means
    The entry's effects have landed and will never be needed again. The runtime acks an entry only
    after its handler returned without listing it, so effects come first and a crash in between
    means a redelivery, never a loss.

When a batch counts as done
    When every entry is acked or dead-lettered. Listed failures stay pending with their error
    recorded until a retry succeeds or the entry is buried; the rest of the batch is acked at once.

What a failure's kind means
    - `InvalidPayload`: the entry's own data is wrong. Dead-lettered at once, and it does not count
      toward the circuit breaker (bad data from one producer must not stop the group).
    - `PermanentError` (any other kind): the deployed code can never handle it. Dead-lettered at
      once, and it counts toward the breaker (many at once mean a bad deploy).
    - Any other exception: transient. The entry is retried after a backoff that doubles per
      delivery (`RetryPolicy`); past `max_deliveries` it is dead-lettered, and that counts toward
      the breaker. A Redis connection error retries the consumer's own pending entries at once,
      when Redis answers again, rather than after a visibility timeout.
    - A handler that raises instead of returning fails its whole batch with that exception.

Dead letters
    A buried entry is appended with its fields, reason and delivery count to the group's dead-letter
    stream and acked in one atomic script; a group's `BurialRecord` writes its own record (ingest's
    `dead_lettered` outcome) inside that same script.

Circuit breaker
    More than `BreakerPolicy.max_dead_letters` counted dead letters within its window pause the
    group (a key holding the reason); consumers stop reading until an operator resumes it.

Shutdown
    `stop()` (SIGTERM, SIGINT) ends reading; batches in hand are finished and acked before `run()`
    returns.
"""

from shared.consumer.config import (
    BreakerPolicy,
    BurialRecord,
    ConsumerConfig,
    DeadLetterPolicy,
    GroupKeys,
    ReadPolicy,
    RetryPolicy,
)
from shared.consumer.message import BatchHandler, Failures, InvalidPayload, PermanentError, StreamMessage
from shared.consumer.runtime import StreamConsumer, ensure_group

__all__ = [
    "BatchHandler",
    "BreakerPolicy",
    "BurialRecord",
    "ConsumerConfig",
    "DeadLetterPolicy",
    "Failures",
    "GroupKeys",
    "InvalidPayload",
    "PermanentError",
    "ReadPolicy",
    "RetryPolicy",
    "StreamConsumer",
    "StreamMessage",
    "ensure_group",
]
