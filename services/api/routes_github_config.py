"""GitHub sync configuration held for the stateless sync producer, and the admin "sync now" route.

The sync state per repository (cursor, ETag) lives in one hash, `keys.github_sync_state`, one JSON
field per `owner/repo`; the producer reads it before a sync and writes it after each accepted page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError, field_validator

from services.api.acceptance import Location, problem
from services.api.auth import require_admin_key
from services.api.errors import error_responses
from services.api.request_body import StrictJsonRoute
from services.api.resources import Resources, request_id
from services.api.routes_producer_requests import append_producer_request
from shared.github_repository import Repository
from shared.github_sync_state import RepoSyncState
from shared.keys import GitHubSyncRequestField


class GitHubReposOut(BaseModel):
    repos: dict[str, RepoSyncState]


class SyncRequestIn(BaseModel):
    repo: str

    @field_validator("repo")
    @classmethod
    def _a_repository(cls, name: str) -> str:
        return str(Repository.parse(name))


class SyncRequestAccepted(BaseModel):
    request_id: str
    repo: str


def repository(owner: str, repo: str) -> Repository:
    return _parse_repository(f"{owner}/{repo}", ("path", "repo"))


def _parse_repository(name: str, location: Location) -> Repository:
    try:
        return Repository.parse(name)
    except ValueError as exc:
        raise RequestValidationError([problem(location, str(exc))]) from exc


router = APIRouter(
    tags=["github"],
    dependencies=[Depends(require_admin_key)],
    route_class=StrictJsonRoute,
    responses=error_responses(401, 403, 422, 503),
)


@router.get("/config/github/repos")
async def list_github_repos(resources: Resources) -> GitHubReposOut:
    stored: dict[str, str] = await resources.redis.hgetall(resources.keys.github_sync_state)
    return GitHubReposOut(repos={name: _parse_state(raw) for name, raw in sorted(stored.items())})


@router.get("/config/github/repos/{owner}/{repo}")
async def get_github_repo(
    repo: Annotated[Repository, Depends(repository)], resources: Resources
) -> RepoSyncState:
    """An empty state for a repository never synced, so its first sync needs no special case."""
    raw: str | None = await resources.redis.hget(resources.keys.github_sync_state, str(repo))
    return RepoSyncState() if raw is None else _parse_state(raw)


@router.put("/config/github/repos/{owner}/{repo}", responses=error_responses(400))
async def put_github_repo(
    state: RepoSyncState, repo: Annotated[Repository, Depends(repository)], resources: Resources
) -> RepoSyncState:
    await resources.redis.hset(resources.keys.github_sync_state, str(repo), state.model_dump_json())
    return state


@router.post("/admin/github-sync", status_code=202, responses=error_responses(400))
async def request_github_sync(
    body: SyncRequestIn, request: Request, resources: Resources
) -> SyncRequestAccepted:
    """Served by a running `soulcaster github-sync` within one long-poll (routes_producer_requests)."""
    fields = {
        GitHubSyncRequestField.REPO: body.repo,
        GitHubSyncRequestField.REQUESTED_AT: datetime.now(UTC).isoformat(),
        GitHubSyncRequestField.REQUEST_ID: request_id(request),
    }
    entry_id = await append_producer_request(resources, resources.keys.github_sync_requests_stream, fields)
    return SyncRequestAccepted(request_id=entry_id, repo=body.repo)


def _parse_state(raw: str) -> RepoSyncState:
    """A hand-edited or corrupted value reads as "never synced" rather than failing every sync."""
    try:
        return RepoSyncState.model_validate_json(raw)
    except ValidationError:
        return RepoSyncState()
