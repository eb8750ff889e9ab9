"""Sentry: integration-platform webhooks (issue, event_alert, error) and the legacy plugin payload.

The shape tells the kind apart: platform webhooks nest everything under `data`, the legacy plugin
puts the issue at the top level with the event under `event`. One issue's events share an item:
the external id is the issue's id (present in issue, alert and error webhooks alike, whereas the
short id the original preferred is only in issue webhooks, so one issue became two items), else its
short id, and only then the event id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from services.ingest.normalized import EventContext, InvalidPayload, Normalized
from services.ingest.normalizers.payload_shape import EXPECTED_OBJECT, IdText, parse_payload
from shared.models import FeedbackItem

SOURCE = "sentry"
Value = TypeVar("Value")


class SentryFrame(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filename: str | None = None
    lineno: int | None = None
    function: str | None = None

    def line(self) -> str:
        """The original's frame line: `  file:line in function`, or without ` in ...` when unknown."""
        where = f"  {self.filename or 'unknown'}:{self.lineno if self.lineno is not None else '?'}"
        return f"{where} in {self.function}" if self.function else where


class SentryStacktrace(BaseModel):
    model_config = ConfigDict(extra="ignore")

    frames: list[SentryFrame] | None = None


class SentryException(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: str | None = None
    value: str | None = None
    stacktrace: SentryStacktrace | None = None

    def headline(self) -> str:
        return f"{self.type or 'Error'}: {self.value or ''}".rstrip()


class SentryExceptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    values: list[SentryException] | None = None


class SentryEvent(BaseModel):
    """An event as the platform (`data.event`, `data.error`) or the legacy plugin sends it."""

    model_config = ConfigDict(extra="ignore")

    event_id: IdText | None = None
    issue_id: IdText | None = None
    title: str | None = None
    message: str | None = None
    culprit: str | None = None
    level: str | None = None
    platform: str | None = None
    release: str | None = None
    environment: str | None = None
    tags: list[Any] | dict[str, Any] | None = None
    fingerprint: Any = None  # Sentry's grouping override (a list of strings), read by the clusterer
    web_url: str | None = None
    url: str | None = None
    exception: SentryExceptions | None = Field(
        default=None, validation_alias=AliasChoices("exception", "sentry.interfaces.Exception")
    )
    stacktrace: SentryStacktrace | None = Field(
        default=None, validation_alias=AliasChoices("stacktrace", "sentry.interfaces.Stacktrace")
    )
    timestamp: datetime | None = None
    occurred_at: datetime | None = Field(default=None, validation_alias="datetime")
    received: datetime | None = None


class SentryIssue(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: IdText | None = None
    short_id: str | None = Field(default=None, validation_alias=AliasChoices("shortId", "short_id"))
    title: str | None = None
    culprit: str | None = None
    level: str | None = None
    platform: str | None = None
    permalink: str | None = None
    first_seen: datetime | None = Field(
        default=None, validation_alias=AliasChoices("firstSeen", "first_seen")
    )


class SentryData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    issue: SentryIssue | None = None
    event: SentryEvent | None = None
    error: SentryEvent | None = None


class SentryPlatformWebhook(BaseModel):
    """Integration-platform delivery; `Sentry-Hook-Resource` names the part of `data` that is set."""

    model_config = ConfigDict(extra="ignore")

    action: str | None = None
    data: SentryData


class SentryLegacyWebhook(SentryEvent):
    """The legacy WebHooks plugin: issue fields at the top level, the event nested under `event`."""

    id: IdText | None = None
    issue: SentryIssue | None = None
    event: SentryEvent | None = None


def _shape_of(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return "platform webhook" if isinstance(value.get("data"), dict) else "legacy webhook"


SentryPayload = Annotated[
    Annotated[SentryPlatformWebhook, Tag("platform webhook")]
    | Annotated[SentryLegacyWebhook, Tag("legacy webhook")],
    Discriminator(_shape_of, custom_error_type="not_an_object", custom_error_message=EXPECTED_OBJECT),
]
SENTRY_PAYLOAD: TypeAdapter[SentryPlatformWebhook | SentryLegacyWebhook] = TypeAdapter(SentryPayload)


@dataclass(frozen=True)
class SentryReport:
    """One issue and its events, most specific first, whatever shape they came in."""

    kind: str
    issue: SentryIssue
    events: tuple[SentryEvent, ...]

    @classmethod
    def of(cls, payload: SentryPlatformWebhook | SentryLegacyWebhook) -> SentryReport:
        if isinstance(payload, SentryPlatformWebhook):
            data = payload.data
            events = tuple(event for event in (data.event, data.error) if event is not None)
            kind = "issue" if data.issue else "event_alert" if data.event else "error"
            return cls(kind, data.issue or SentryIssue(), events)
        issue = payload.issue or SentryIssue(id=payload.id)
        nested = (payload.event,) if payload.event is not None else ()
        return cls("legacy", issue, (*nested, payload))

    def event_value(self, name: str) -> Any:
        return _first_set(getattr(event, name) for event in self.events)

    @property
    def exceptions(self) -> list[SentryException]:
        return _first_set(event.exception.values for event in self.events if event.exception) or []

    @property
    def issue_id(self) -> str | None:
        return self.issue.id or self.event_value("issue_id")

    @property
    def external_id(self) -> str | None:
        return self.issue_id or self.issue.short_id or self.event_value("event_id")

    def frame_lines(self) -> list[str]:
        """Frames of every exception (as the original); a legacy message event has a bare stacktrace."""
        stacktraces = [exc.stacktrace for exc in self.exceptions if exc.stacktrace]
        if not stacktraces:
            stacktraces = [event.stacktrace for event in self.events if event.stacktrace][:1]
        return [frame.line() for trace in stacktraces for frame in trace.frames or []]


def _first_set(values: Iterable[Value | None]) -> Value | None:
    """The first value that is set and not empty."""
    return next((value for value in values if value), None)


def normalize_sentry(payload: Any, context: EventContext) -> Normalized:
    report = SentryReport.of(parse_payload(SENTRY_PAYLOAD, payload))
    external_id = report.external_id
    if external_id is None:
        raise InvalidPayload("sentry payload has no issue short id, issue id or event id")
    return Normalized(
        FeedbackItem(
            id=context.item_id(SOURCE, external_id),
            source=SOURCE,
            external_id=external_id,
            title=_title(report, external_id),
            body=_body(report),
            metadata=_metadata(report),
            created_at=_created_at(report) or context.received_at,
        )
    )


def _headline(report: SentryReport) -> str | None:
    exceptions = report.exceptions
    return exceptions[0].headline() if exceptions else None


def _title(report: SentryReport, external_id: str) -> str:
    return (
        report.issue.title
        or report.event_value("title")
        or _headline(report)
        or report.event_value("message")
        or report.event_value("culprit")
        or f"Sentry event {external_id}"
    )


def _body(report: SentryReport) -> str:
    head = (
        _headline(report)
        or report.event_value("message")
        or report.event_value("culprit")
        or report.issue.culprit
        or ""
    )
    lines = report.frame_lines()
    return f"{head}\n\nStacktrace:\n" + "\n".join(lines) if lines else head


def _metadata(report: SentryReport) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "resource": report.kind,
        "issue_id": report.issue_id,
        "event_id": report.event_value("event_id"),
        "level": report.event_value("level") or report.issue.level,
        "platform": report.event_value("platform") or report.issue.platform,
        "release": report.event_value("release"),
        "environment": report.event_value("environment"),
        "tags": report.event_value("tags"),
        "fingerprint": report.event_value("fingerprint"),
        "web_url": report.event_value("web_url") or report.issue.permalink,
        "url": report.event_value("url"),
    }
    return {name: value for name, value in metadata.items() if value is not None}


def _created_at(report: SentryReport) -> datetime | None:
    """When Sentry saw it: the event's time, the issue's first sighting, or the legacy receipt time."""
    moment: datetime | None = (
        report.event_value("timestamp")
        or report.event_value("occurred_at")
        or report.issue.first_seen
        or report.event_value("received")
    )
    return moment
