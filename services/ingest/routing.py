"""Which partition an event goes to: the partition of the item id the worker's normalizer derives.

Dedupe stays one atomic step across partitions only when every event about an item is handled by
the partition that holds the item's keys (docs/scaling.md, 3.3). The item id is decided by the
source's normalizer, which is pure: running it before the append (a trial normalization, the same
one the API runs to refuse bad input) yields the id the worker will derive. An event without an
external id or idempotency key would take its id from its entry id, known only after the append:
it is given a minted one (`uuid4`) instead, which the publisher carries in the entry's `item_id`
field and the worker's normalizer then uses, so a replay derives the same id again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from services.ingest.normalized import EventContext, Normalized, Normalizer, NormalizeResult
from services.ingest.normalizers import NORMALIZERS
from shared.publisher import RawEvent

TRIAL_ENTRY_ID = "0-1"
"""The entry id a trial normalization sees; never the item id's source, as every trial context
carries a minted id that comes before the entry id."""


def trial_context(received_at: datetime, idempotency_key: str = "") -> EventContext:
    """The context of a trial normalization, with a freshly minted item id of its own."""
    return EventContext(TRIAL_ENTRY_ID, received_at, idempotency_key, str(uuid.uuid4()))


def routed_item_id(result: NormalizeResult, context: EventContext) -> str:
    """The id to route by: the item's, or for an event that makes no item (ignored) the minted one."""
    return result.item.id if isinstance(result, Normalized) else context.assigned_item_id


def routed(event: RawEvent, normalizers: Mapping[str, Normalizer] = NORMALIZERS) -> RawEvent:
    """The event with the item id to route it by, for a producer that publishes directly.

    An event that does not normalize is routed by a minted id: the worker of that partition
    dead-letters it with the reason, as it would on a single node.
    """
    context = trial_context(datetime.now(UTC), event.idempotency_key)
    try:
        result = normalizers[event.source](json.loads(event.payload), context)
    except Exception:  # whatever the worker would dead-letter: a pure function fails the same way
        return replace(event, item_id=context.assigned_item_id)
    return replace(event, item_id=routed_item_id(result, context))
