"""A stream entry id as the API accepts one, in a path or a body: the one definition of its form.

Redis ids are `<milliseconds>-<sequence>`, each part an unsigned 64-bit integer. The whole text must
match (a trailing newline is not an id), and each part must fit, so that a malformed id is the
caller's 422 rather than a command Redis refuses, which would read as a 503.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

PATTERN = r"^\d{1,20}-\d{1,20}$"
_PARTS = re.compile(r"(\d{1,20})-(\d{1,20})")
_LARGEST_PART = 2**64 - 1


def _entry_id(text: str) -> str:
    parts = _PARTS.fullmatch(text)
    if parts is None or any(int(part) > _LARGEST_PART for part in parts.groups()):
        raise ValueError("must be a stream entry id such as 1700000000000-0 (each part below 2^64)")
    return text


EntryId = Annotated[
    str,
    AfterValidator(_entry_id),
    WithJsonSchema({"type": "string", "pattern": PATTERN, "examples": ["1700000000000-0"]}),
]


EVENT_PATTERN = r"^(\d{1,4}:)?\d{1,20}-\d{1,20}$"


def _event_id(text: str) -> str:
    """An entry id, optionally qualified by its partition (`2:1700000000000-0`)."""
    partition, colon, entry_id = text.rpartition(":")
    if colon and not (partition.isdigit() and len(partition) <= 4 and partition.isascii()):
        raise ValueError("must be an event id such as 1700000000000-0 or, partitioned, 2:1700000000000-0")
    _entry_id(entry_id)
    return text


EventId = Annotated[
    str,
    AfterValidator(_event_id),
    WithJsonSchema(
        {"type": "string", "pattern": EVENT_PATTERN, "examples": ["1700000000000-0", "2:1700000000000-0"]}
    ),
]
"""An event id as `POST /ingest/*` returns it: with several partitions, `<partition>:<entry id>`."""
