"""The `FeedbackItem`, and how it is laid out in a Redis hash the dashboard reads."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

KNOWN_SOURCES = ("reddit", "sentry", "manual", "github", "splunk", "posthog", "datadog")
SOURCE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"

# Fixed namespace so every process derives the same item id from the same event.
ITEM_NAMESPACE = uuid.UUID("5f1c2a8e-4b7d-4c1e-9a3f-6d2b8e0c7a41")


def item_id_for(source: str, external_id: str | None, entry_id: str) -> str:
    """Deterministic id: a redelivered or replayed event maps to the same item."""
    name = f"{source}:{external_id}" if external_id else f"entry:{entry_id}"
    return str(uuid.uuid5(ITEM_NAMESPACE, name))


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
        for name, value in self.model_dump(exclude_none=True).items():
            if name == "metadata":
                fields[name] = json.dumps(value, separators=(",", ":"), default=str)
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
        try:
            data["metadata"] = json.loads(fields.get("metadata") or "{}")
        except json.JSONDecodeError:
            data["metadata"] = {}
        data["clustered"] = fields.get("clustered") == "true"
        return cls.model_validate(data)


def clustering_text(title: str, body: str, limit: int = 1500) -> str:
    """Title, blank line, body cut to `limit` characters (docs/architecture.md, "Clustering text")."""
    title, body = title.strip(), body.strip()[:limit]
    return f"{title}\n\n{body}" if title and body else title or body
