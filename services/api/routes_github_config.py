"""GitHub sync configuration held for the stateless sync producer, and the admin "sync now" route.

The sync state per repository (cursor, ETag) lives in one hash, `keys.github_sync_state`, one JSON
field per `owner/repo`; the producer reads it before a sync and writes it after each accepted page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ValidationError

from services.api.bearer_keys import require_admin_key
from services.api.resources import AppResources, app_resources, request_id
from shared.github_repository import Repository
from shared.github_sync_state import RepoSyncState
from shared.keys import GitHubSyncRequestField

SYNC_REQUESTS_KEPT = 10_000


class GitHubReposOut(BaseModel):
    repos: dict[str, RepoSyncState]


class SyncRequestIn(BaseModel):
    repo: str


class SyncRequestAccepted(BaseModel):
    request_id: str
    repo: str


def repository(owner: str, repo: str) -> Repository:
    return _parse_repository(f"{owner}/{repo}")


def _parse_repository(name: str) -> Repository:
    try:
        return Repository.parse(name)
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from exc


router = APIRouter(tags=["github"], dependencies=[Depends(require_admin_key)])


@router.get("/config/github/repos")
async def list_github_repos(
    app: Annotated[AppResources, Depends(app_resources)],
) -> GitHubReposOut:
    stored: dict[str, str] = await app.redis.hgetall(app.keys.github_sync_state)
    return GitHubReposOut(repos={name: _parse_state(raw) for name, raw in sorted(stored.items())})


@router.get("/config/github/repos/{owner}/{repo}")
async def get_github_repo(
    repo: Annotated[Repository, Depends(repository)],
    app: Annotated[AppResources, Depends(app_resources)],
) -> RepoSyncState:
    """An empty state for a repository never synced, so its first sync needs no special case."""
    raw: str | None = await app.redis.hget(app.keys.github_sync_state, str(repo))
    return RepoSyncState() if raw is None else _parse_state(raw)


@router.put("/config/github/repos/{owner}/{repo}")
async def put_github_repo(
    state: RepoSyncState,
    repo: Annotated[Repository, Depends(repository)],
    app: Annotated[AppResources, Depends(app_resources)],
) -> RepoSyncState:
    await app.redis.hset(app.keys.github_sync_state, str(repo), state.model_dump_json())
    return state


@router.post("/admin/github-sync", status_code=202)
async def request_github_sync(
    body: SyncRequestIn,
    request: Request,
    app: Annotated[AppResources, Depends(app_resources)],
) -> SyncRequestAccepted:
    """Served by a running `soulcaster github-sync` within one long-poll (routes_producer_requests)."""
    repo = _parse_repository(body.repo)
    fields = {
        GitHubSyncRequestField.REPO: str(repo),
        GitHubSyncRequestField.REQUESTED_AT: datetime.now(UTC).isoformat(),
        GitHubSyncRequestField.REQUEST_ID: request_id(request),
    }
    entry_id: str = await app.redis.xadd(
        app.keys.github_sync_requests_stream, fields, maxlen=SYNC_REQUESTS_KEPT, approximate=True
    )
    return SyncRequestAccepted(request_id=entry_id, repo=str(repo))


def _parse_state(raw: str) -> RepoSyncState:
    """A hand-edited or corrupted value reads as "never synced" rather than failing every sync."""
    try:
        return RepoSyncState.model_validate_json(raw)
    except ValidationError:
        return RepoSyncState()
