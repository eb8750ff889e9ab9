"""Ingest's burial record: a dead-lettered event's outcome, so producers see why it never landed.

The generic runtime knows nothing of outcomes; it runs this record inside its dead-letter script, so
the outcome is written atomically with the dead letter and the ack. Field names and the status come
from `services.ingest.outcomes`, the same ones the API reads.
"""

from __future__ import annotations

from importlib.resources import files

from services.ingest.outcomes import Outcome, OutcomeField
from shared.consumer import BurialRecord
from shared.keys import Keys

_LUA = files("services.ingest").joinpath("dead_letter_outcome.lua").read_text()


def dead_letter_outcome(keys: Keys, ttl_seconds: int) -> BurialRecord:
    """Record `dead_lettered`, the reason and the dead letter's id in the event's outcomes hash."""
    return BurialRecord(
        lua=_LUA,
        keys_for=lambda entry_id: [keys.event_outcomes(entry_id)],
        args=[
            ttl_seconds,
            OutcomeField.STATUS,
            Outcome.DEAD_LETTERED,
            OutcomeField.ERROR,
            OutcomeField.DEAD_LETTER_ID,
        ],
    )
