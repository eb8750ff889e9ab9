"""Third-party webhooks: Sentry and GitHub, authenticated by their HMAC signatures.

GitHub: only `issues` deliveries are published; `ping` is answered (200, not published) and any
other event type is acknowledged with 202 and ignored, so that a hook subscribed to "everything"
does not show failed deliveries. Without `X-GitHub-Event` the body is a JSON array of REST issue
objects (the GitHub sync's form); pull requests in it are skipped and counted.
Sentry: the `issue`, `event_alert` and `error` resources and the legacy plugin (no resource header)
are published; other resources (`installation`, `metric_alert`, `comment`, ...) are ignored.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, TypeAdapter

from services.api.acceptance import (
    ACCEPTED,
    accept_many,
    accept_one,
    check_batch_size,
    ignored,
    normalizes,
    problem,
    validated,
    validated_each,
)
from services.api.errors import error_responses
from services.api.openapi_document import raw_json_body
from services.api.request_body import JsonBody, read_json_body
from services.api.resources import AppResources, Resources
from services.api.webhook_signatures import GITHUB_SIGNATURE, SENTRY_SIGNATURE, WebhookSignature
from services.ingest.normalizers.github import (
    GITHUB_DELIVERY,
    GITHUB_ISSUE,
    GitHubIssue,
    GitHubIssuesDelivery,
)
from services.ingest.normalizers.sentry import (
    SENTRY_PAYLOAD,
    SentryLegacyWebhook,
    SentryPlatformWebhook,
    SentryReport,
)

router = APIRouter(
    prefix="/ingest",
    tags=["webhooks"],
    responses={**ACCEPTED, **error_responses(400, 401, 413, 422, 503)},
)
SENTRY_RESOURCES = frozenset({"issue", "event_alert", "error"})


class GitHubPing(BaseModel):
    model_config = ConfigDict(extra="ignore")

    zen: str = ""
    hook_id: int | None = None


GITHUB_PING: TypeAdapter[GitHubPing] = TypeAdapter(GitHubPing)
GITHUB_BODY: TypeAdapter[Any] = TypeAdapter(GitHubIssuesDelivery | GitHubPing | list[GitHubIssue])
# Documented as "either shape" (anyOf): every legacy field is optional, so a platform webhook would
# match both, and "exactly one" (the oneOf of the discriminated SENTRY_PAYLOAD) would refuse it.
SENTRY_BODY: TypeAdapter[Any] = TypeAdapter(SentryPlatformWebhook | SentryLegacyWebhook)
PING_ANSWERED: dict[int | str, dict[str, Any]] = {200: {"model": GitHubPing, "description": "A `ping`."}}


async def signed_body(
    request: Request, resources: AppResources, signature: WebhookSignature, secret: str
) -> JsonBody:
    settings = resources.settings
    body = await read_json_body(request, settings.max_body_bytes)
    signature.authorize(request, body.raw, secret, settings)
    return body


@router.post("/sentry", status_code=202, openapi_extra=raw_json_body("SentryIngestBody", SENTRY_BODY))
async def ingest_sentry(
    request: Request, resources: Resources, sentry_hook_resource: str | None = Header(default=None)
) -> JSONResponse:
    body = await signed_body(request, resources, SENTRY_SIGNATURE, resources.settings.sentry_client_secret)
    if sentry_hook_resource is not None and sentry_hook_resource not in SENTRY_RESOURCES:
        return ignored(f"sentry resource {sentry_hook_resource!r} carries no feedback")
    report = SentryReport.of(validated(SENTRY_PAYLOAD, body.data))
    if report.external_id is None:
        raise RequestValidationError([problem(("body",), "no issue short id, issue id or event id")])
    [trial] = normalizes(request, "sentry", [body.data], ("body",), batch=False)
    return await accept_one(request, "sentry", body.text, trial)


@router.post(
    "/github",
    status_code=202,
    responses=PING_ANSWERED,
    openapi_extra=raw_json_body("GitHubIngestBody", GITHUB_BODY),
)
async def ingest_github(
    request: Request, resources: Resources, x_github_event: str | None = Header(default=None)
) -> JSONResponse:
    body = await signed_body(request, resources, GITHUB_SIGNATURE, resources.settings.github_webhook_secret)
    if x_github_event is None:
        return await _rest_issues(request, body)
    if x_github_event == "ping":
        ping = validated(GITHUB_PING, body.data)
        return JSONResponse({"zen": ping.zen, "hook_id": ping.hook_id}, status_code=status.HTTP_200_OK)
    if x_github_event != "issues":
        return ignored(f"github event {x_github_event!r} is not ingested")
    validated(GITHUB_DELIVERY, body.data)
    [trial] = normalizes(request, "github", [body.data], ("body",), batch=False)
    return await accept_one(request, "github", body.text, trial)


async def _rest_issues(request: Request, body: JsonBody) -> JSONResponse:
    if not isinstance(body.data, list):
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "without an X-GitHub-Event header the body must be a JSON array of REST issue objects",
        )
    check_batch_size(request, len(body.data))
    issues = validated_each(GITHUB_ISSUE, body.data, ("body",))
    trials = normalizes(request, "github", body.data, ("body",), batch=True)
    kept = [
        (raw, trial)
        for raw, issue, trial in zip(body.data, issues, trials, strict=True)
        if not issue.is_pull_request
    ]
    return await accept_many(
        request,
        "github",
        [raw for raw, _ in kept],
        [trial for _, trial in kept],
        skipped_pull_requests=len(issues) - len(kept),
    )
