"""What a normalizer makes of one raw event, and the contract every normalizer keeps.

A normalizer is a pure function of the payload and the event's context: no I/O, no clock, no
randomness. That is what makes a replay of `stream:ingest` reproduce the same items.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.consumer import InvalidPayload as InvalidPayload  # what a normalizer raises for bad input
from shared.models import FeedbackItem, item_id_for


@dataclass(slots=True)
class EventContext:
    """Where a raw event came from: its stream entry id, when the API received it, the producer's
    idempotency key (empty when none was sent) and the item id its publisher assigned (with several
    partitions, the `item_id` field; empty on a single node).

    This and `Normalized` are made once per ingested event, so they are slotted rather than frozen
    (a frozen dataclass's `__init__` costs about ten times as much); nothing changes them."""

    entry_id: str
    received_at: datetime
    idempotency_key: str = ""
    assigned_item_id: str = ""

    def item_id(self, source: str, external_id: str | None) -> str:
        return item_id_for(source, external_id, self.entry_id, self.idempotency_key, self.assigned_item_id)


@dataclass(slots=True)
class Normalized:
    """An item to store.

    `update_existing`: a later event about an item already stored (a GitHub `edited`, `closed` or
    `reopened`) rewrites its title, body, status and metadata in place, without a new-item event.
    `create_if_new`: False for an event that only makes sense about a known item (a closed issue
    never seen open is not worth storing).
    `revision`: the source's own version of the item (e.g. GitHub's `updated_at` as epoch seconds);
    an update older than the stored revision is ignored, so out-of-order deliveries and replays of old
    events never roll an item back.
    """

    item: FeedbackItem
    update_existing: bool = False
    create_if_new: bool = True
    revision: float | None = None


@dataclass(frozen=True)
class Ignored:
    """A valid event that carries no feedback (a pull request, a `labeled` action); recorded, not stored."""

    reason: str


NormalizeResult = Normalized | Ignored


class Normalizer(Protocol):
    def __call__(self, payload: Any, context: EventContext) -> NormalizeResult: ...
