"""The `FeedbackItem`, and how it is laid out in a Redis hash the dashboard reads."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

KNOWN_SOURCES = ("reddit", "sentry", "manual", "github", "splunk", "posthog", "datadog")
SOURCE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"

# Fixed namespace so every process derives the same item id from the same event.
ITEM_NAMESPACE = uuid.UUID("5f1c2a8e-4b7d-4c1e-9a3f-6d2b8e0c7a41")

METADATA_READ_DEPTH = 128
"""Stored metadata nested deeper than this is served as its raw JSON text under `UNREADABLE_METADATA`:
the API refuses such input (MAX_JSON_DEPTH, at most this), but an item stored before that rule, or
written by hand, must not fail every page it appears on."""
UNREADABLE_METADATA = "_unparsed"


def item_id_for(
    source: str,
    external_id: str | None,
    entry_id: str,
    idempotency_key: str = "",
    assigned_item_id: str = "",
) -> str:
    """Deterministic id: a redelivered or replayed event maps to the same item.

    The source's own id comes first; without one, the producer's `Idempotency-Key`, so a client that
    retries after an unclear answer (a 503 whose entry was in fact stored) names the same item again;
    then the id the publisher assigned (with several partitions: it routes the event before the
    append, when the entry id is not known yet); only then the stream entry id, which differs for
    every append.
    """
    if external_id:
        name = f"{source}:{external_id}"
    elif idempotency_key:
        name = f"idempotency:{source}:{idempotency_key}"
    elif assigned_item_id:
        return assigned_item_id
    else:
        name = f"entry:{entry_id}"
    return uuid5_text(name)


_NAMESPACE_HASH = hashlib.sha1(ITEM_NAMESPACE.bytes)
# RFC 4122 variant: the top two bits of the 17th hex digit are 10.
_VARIANT = {digit: "89ab"[int(digit, 16) % 4] for digit in "0123456789abcdef"}


def uuid5_text(name: str) -> str:
    """`str(uuid.uuid5(ITEM_NAMESPACE, name))`, formatted straight from the SHA-1 hex digest: the
    ingest worker derives one id per event, and `uuid.UUID`'s checks cost more than the hash. The
    namespace is hashed once and the hash copied, instead of hashing it again for every name."""
    digest = _NAMESPACE_HASH.copy()
    digest.update(name.encode())
    h = digest.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def nesting_depth(value: Any) -> int:
    """How many arrays and objects enclose the deepest value, counted without recursion."""
    deepest, pending = 0, [(value, 0)]
    while pending:
        current, depth = pending.pop()
        deepest = max(deepest, depth)
        if isinstance(current, dict):
            pending.extend((child, depth + 1) for child in current.values())
        elif isinstance(current, list):
            pending.extend((child, depth + 1) for child in current)
    return deepest


def stored_metadata(raw: str) -> dict[str, Any]:
    """The metadata of a stored hash; text that does not parse to a readable object is kept verbatim."""
    try:
        parsed = json.loads(raw or "{}")
    except (json.JSONDecodeError, RecursionError):
        return {UNREADABLE_METADATA: raw}
    if not isinstance(parsed, dict) or nesting_depth(parsed) > METADATA_READ_DEPTH:
        return {UNREADABLE_METADATA: raw}
    return parsed


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str
    source: str = Field(pattern=SOURCE_PATTERN)
    external_id: str | None = None
    title: str
    body: str = ""
    raw_text: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    repo: str | None = None
    github_issue_number: int | None = None
    github_issue_url: str | None = None
    status: Literal["open", "closed"] | None = None
    clustered: bool = False
    cluster_id: str | None = None

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def to_hash(self) -> dict[str, str]:
        """Strings only, None left out, metadata as JSON, booleans as `true`/`false`: the layout the
        dashboard parses."""
        fields: dict[str, str] = {}
        for name, value in self.__dict__.items():  # the field values, without a serialization pass
            if type(value) is str:  # most fields: checked first, as this runs once per ingested event
                fields[name] = value
            elif value is None:
                continue
            elif name == "metadata":
                fields[name] = json.dumps(value, separators=(",", ":"), default=str) if value else "{}"
            elif name == "created_at":
                fields[name] = value.isoformat()
            elif isinstance(value, bool):
                fields[name] = "true" if value else "false"
            else:
                fields[name] = str(value)
        return fields

    @classmethod
    def from_hash(cls, fields: dict[str, str]) -> FeedbackItem:
        data: dict[str, Any] = dict(fields)
        data["metadata"] = stored_metadata(fields.get("metadata", ""))
        data["clustered"] = fields.get("clustered") == "true"
        return cls.model_validate(data)


def clustering_text(title: str, body: str, limit: int = 1500) -> str:
    """Title, blank line, body cut to `limit` characters (docs/architecture.md, "Clustering text")."""
    title, body = title.strip(), body.strip()[:limit]
    return f"{title}\n\n{body}" if title and body else title or body
