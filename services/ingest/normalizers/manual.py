"""Manual feedback typed into the dashboard: free text, no external id, so never deduped."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from services.ingest.normalized import EventContext, Normalized
from services.ingest.normalizers.payload_shape import parse_payload
from shared.models import FeedbackItem

SOURCE = "manual"
TITLE_LIMIT = 80


class ManualPayload(BaseModel):
    """`{"text": ..., "title"?: ..., "metadata"?: {...}}`; other fields (the dashboard's `github_repo_url`)
    are ignored, so a client that sends more than the item keeps is not refused."""

    model_config = ConfigDict(extra="ignore")

    text: str
    title: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("text must not be empty")
        return text


MANUAL_PAYLOAD: TypeAdapter[ManualPayload] = TypeAdapter(ManualPayload)


def normalize_manual(payload: Any, context: EventContext) -> Normalized:
    manual = parse_payload(MANUAL_PAYLOAD, payload)
    return Normalized(
        FeedbackItem(
            id=context.item_id(SOURCE, None),
            source=SOURCE,
            title=(manual.title or "").strip() or manual.text.strip()[:TITLE_LIMIT],
            body=manual.text,
            metadata=manual.metadata,
            created_at=context.received_at,
        )
    )
