"""Generic feedback from any service, already shaped like a FeedbackItem; its source names the service.

The producer's `id`, `clustered` and `cluster_id` are ignored: the id is derived (so a retried post
is the same item) and clustering state belongs to the clusterer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from services.ingest.normalized import EventContext, Normalized
from services.ingest.normalizers.payload_shape import IdText, Moment, parse_payload
from shared.models import SOURCE_PATTERN, FeedbackItem

TITLE_LIMIT = 80


class FeedbackPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    source: str = Field(pattern=SOURCE_PATTERN)
    title: str = ""
    body: str = ""
    external_id: IdText | None = Field(default=None, min_length=1)
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: Moment | None = None
    raw_text: str | None = None
    repo: str | None = None
    github_issue_number: int | None = None
    github_issue_url: str | None = None
    status: Literal["open", "closed"] | None = None

    @model_validator(mode="after")
    def _has_text(self) -> FeedbackPayload:
        if not (self.title.strip() or self.body.strip()):
            raise ValueError("title or body must not be empty")
        return self


FEEDBACK_PAYLOAD: TypeAdapter[FeedbackPayload] = TypeAdapter(FeedbackPayload)


def normalize_feedback(payload: Any, context: EventContext) -> Normalized:
    feedback = parse_payload(FEEDBACK_PAYLOAD, payload)
    # The validated values as they are: `model_dump` would copy them all (a third of this
    # function's cost, paid once per ingested event) only for FeedbackItem to copy them again.
    fields = dict(feedback.__dict__)
    fields["id"] = context.item_id(feedback.source, feedback.external_id)
    fields["title"] = feedback.title.strip() or feedback.body.strip()[:TITLE_LIMIT]
    fields["created_at"] = feedback.created_at or context.received_at
    return Normalized(FeedbackItem(**fields))
