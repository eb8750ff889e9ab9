"""One consumer-group runtime for every worker: read, handle, ack, reclaim, dead-letter, shut down."""

from shared.consumer.config import ConsumerConfig
from shared.consumer.message import BatchHandler, Failures, PermanentError, StreamMessage
from shared.consumer.runtime import StreamConsumer, ensure_group

__all__ = [
    "BatchHandler",
    "ConsumerConfig",
    "Failures",
    "PermanentError",
    "StreamConsumer",
    "StreamMessage",
    "ensure_group",
]
