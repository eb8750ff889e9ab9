"""GitHub issues: `issues` webhook deliveries and issue objects as the REST API lists them.

Only `opened` creates an item outright. Every other action, and every REST issue, refreshes a known
item in place (title, body, status, metadata); it creates one only while the issue is open, since a
closed issue never seen is not worth storing. `deleted` and `transferred` leave nothing to track
here and are ignored, as are pull requests (the REST issues list includes them).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from services.ingest.normalized import EventContext, Ignored, Normalized, NormalizeResult
from services.ingest.normalizers.payload_shape import EXPECTED_OBJECT, IdText, Moment, parse_payload
from shared.models import FeedbackItem

SOURCE = "github"
IGNORED_ACTIONS = frozenset({"deleted", "transferred"})
# https://api.github.com/repos/{owner}/{repo} and https://github.com/{owner}/{repo}/issues/{n}
_REPO_IN_URL = re.compile(r"^https?://[^/]+/(?:repos/)?(?P<repo>[^/]+/[^/]+?)(?:/issues/\d+)?/?$")


class GitHubUser(BaseModel):
    model_config = ConfigDict(extra="ignore")

    login: str


class GitHubLabel(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str


class GitHubMilestone(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str


class GitHubRepository(BaseModel):
    model_config = ConfigDict(extra="ignore")

    full_name: str


class GitHubIssue(BaseModel):
    """One issue as both the REST API and the `issues` webhook describe it."""

    model_config = ConfigDict(extra="ignore")

    id: IdText = Field(min_length=1)
    number: int
    title: str | None = None
    body: str | None = None
    state: Literal["open", "closed"]
    html_url: str
    repository_url: str | None = None
    created_at: Moment
    updated_at: Moment | None = None
    comments: int = 0
    user: GitHubUser | None = None
    labels: list[GitHubLabel | str] = Field(default_factory=list)
    assignees: list[GitHubUser] = Field(default_factory=list)
    milestone: GitHubMilestone | None = None
    pull_request: dict[str, Any] | None = None

    @property
    def is_pull_request(self) -> bool:
        return self.pull_request is not None


class GitHubIssuesDelivery(BaseModel):
    """The body of an `issues` webhook delivery (`X-GitHub-Event: issues`)."""

    model_config = ConfigDict(extra="ignore")

    action: str = Field(min_length=1)
    issue: GitHubIssue
    repository: GitHubRepository | None = None


def _shape_of(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    return "issues delivery" if "issue" in value and "action" in value else "REST issue"


GitHubPayload = Annotated[
    Annotated[GitHubIssuesDelivery, Tag("issues delivery")] | Annotated[GitHubIssue, Tag("REST issue")],
    Discriminator(_shape_of, custom_error_type="not_an_object", custom_error_message=EXPECTED_OBJECT),
]
GITHUB_PAYLOAD: TypeAdapter[GitHubIssuesDelivery | GitHubIssue] = TypeAdapter(GitHubPayload)
GITHUB_ISSUE: TypeAdapter[GitHubIssue] = TypeAdapter(GitHubIssue)
GITHUB_DELIVERY: TypeAdapter[GitHubIssuesDelivery] = TypeAdapter(GitHubIssuesDelivery)


def normalize_github(payload: Any, context: EventContext) -> NormalizeResult:
    parsed = parse_payload(GITHUB_PAYLOAD, payload)
    if isinstance(parsed, GitHubIssue):
        return _refresh(parsed, repo_of(parsed, None), context)
    issue = parsed.issue
    if parsed.action in IGNORED_ACTIONS:
        return Ignored(f"issue {parsed.action}")
    repo = repo_of(issue, parsed.repository)
    if parsed.action == "opened" and not issue.is_pull_request:
        return Normalized(issue_item(issue, repo, context), revision=revision_of(issue))
    return _refresh(issue, repo, context)


def _refresh(issue: GitHubIssue, repo: str | None, context: EventContext) -> NormalizeResult:
    if issue.is_pull_request:
        return Ignored("pull request")
    return Normalized(
        issue_item(issue, repo, context),
        update_existing=True,
        create_if_new=issue.state == "open",
        revision=revision_of(issue),
    )


def revision_of(issue: GitHubIssue) -> float | None:
    """GitHub's `updated_at`: a late webhook or an old sync page never rolls a newer issue back."""
    return issue.updated_at.timestamp() if issue.updated_at else None


def repo_of(issue: GitHubIssue, repository: GitHubRepository | None) -> str | None:
    """`owner/repo` from the delivery's repository, else from the issue's own URLs."""
    if repository is not None:
        return repository.full_name
    for url in (issue.repository_url, issue.html_url):
        match = _REPO_IN_URL.match(url or "")
        if match:
            return match["repo"]
    return None


def issue_item(issue: GitHubIssue, repo: str | None, context: EventContext) -> FeedbackItem:
    """An issue or pull request as an item: an untitled issue is named `{repo} issue #{n}`, `raw_text`
    is the body (else the title), and the dashboard's fields (labels, state, people) go in metadata."""
    title = issue.title or f"{repo or 'github'} issue #{issue.number}"
    body = issue.body or ""
    return FeedbackItem(
        id=context.item_id(SOURCE, issue.id),
        source=SOURCE,
        external_id=issue.id,
        title=title,
        body=body,
        raw_text=body or title,
        created_at=issue.created_at,
        repo=repo,
        github_issue_number=issue.number,
        github_issue_url=issue.html_url,
        status=issue.state,
        metadata={
            "labels": [label if isinstance(label, str) else label.name for label in issue.labels],
            "state": issue.state,
            "comments": issue.comments,
            "created_at": issue.created_at.isoformat(),
            "updated_at": issue.updated_at.isoformat() if issue.updated_at else None,
            "author": issue.user.login if issue.user else None,
            "assignees": [assignee.login for assignee in issue.assignees],
            "milestone": issue.milestone.title if issue.milestone else None,
        },
    )
