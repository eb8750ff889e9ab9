"""Sync state per repository, kept by the ingest API so the sync process itself stays stateless."""

from __future__ import annotations

from services.poller.producer.ingest_client import IngestApiClient
from shared.github_repository import Repository
from shared.github_sync_state import RepoSyncState

STATE_PATH = "/config/github/repos"


class SyncStateStore:
    def __init__(self, api: IngestApiClient) -> None:
        self._api = api

    async def load(self, repo: Repository) -> RepoSyncState:
        """An empty state for a repository never synced: its first sync takes open issues only."""
        return RepoSyncState.model_validate(await self._api.get_json(self._path(repo), admin=True))

    async def save(self, repo: Repository, state: RepoSyncState) -> None:
        await self._api.put_json(self._path(repo), state.model_dump(mode="json"), admin=True)

    @staticmethod
    def _path(repo: Repository) -> str:
        return f"{STATE_PATH}/{repo.owner}/{repo.name}"
