"""What became of an ingest event, kept under `ingest:event:{entry_id}` for producers to look up.

The worker's write script records the outcome in the same atomic step as the effect; the
dead-letter script records `dead_lettered`. No record and the entry still in the stream: `pending`.
"""

from enum import StrEnum


class Outcome(StrEnum):
    PENDING = "pending"
    CREATED = "created"
    DUPLICATE = "duplicate"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


class OutcomeField:
    STATUS = "status"
    FEEDBACK_ID = "feedback_id"
    REASON = "reason"
    ERROR = "error"
    DEAD_LETTER_ID = "dead_letter_id"
