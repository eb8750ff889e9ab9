"""The github-sync process: every repository each interval, and any repository an operator asks for.

Between rounds the process long-polls the API for sync requests (`POST /admin/github-sync`), so a
request is served within one API round trip rather than at the next interval. A repository that
keeps failing is logged and skipped until the next round; the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx

from services.poller.github.issues_api import GitHubIssues, GitHubRequestFailed
from services.poller.github.repo_sync import RepoSync
from services.poller.github.state_store import SyncStateStore
from services.poller.producer.ingest_client import IngestApiClient, IngestApiRejected
from services.poller.producer.producer_loop import run_rounds
from services.poller.producer.requests_client import ProducerRequest, ProducerRequests
from shared.github_repository import Repository
from shared.keys import GITHUB_SYNC_GROUP, GitHubSyncRequestField
from shared.loop_process import LoopHeartbeat
from shared.retry_policy import RemoteUnavailableError, RetryPolicy
from shared.settings import Settings

log = logging.getLogger(__name__)

SYNC_FAILURES = (GitHubRequestFailed, IngestApiRejected, RemoteUnavailableError, httpx.HTTPError, ValueError)


class GitHubSyncProcess:
    def __init__(
        self,
        repo_sync: RepoSync,
        repos: Sequence[Repository],
        interval_seconds: float,
        requests: ProducerRequests,
    ) -> None:
        self._repo_sync = repo_sync
        self._repos = list(repos)
        self._interval = interval_seconds
        self._requests = requests

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        http: httpx.AsyncClient,
        repos: Sequence[Repository],
        interval_seconds: float,
        retry: RetryPolicy | None = None,
    ) -> GitHubSyncProcess:
        """The same wiring for the command and the tests (which pass tiny retry delays)."""
        api = IngestApiClient.from_settings(http, settings, retry)
        github = GitHubIssues(http, settings.github_api_url, settings.github_token, retry)
        repo_sync = RepoSync(github, api, SyncStateStore(api))
        requests = ProducerRequests(api, GITHUB_SYNC_GROUP, settings.consumer_name)
        return cls(repo_sync, repos, interval_seconds, requests)

    async def sync_all(self) -> list[Repository]:
        """One round over the configured repositories; returns those that failed."""
        return [repo for repo in self._repos if not await self.sync_one(repo)]

    async def sync_one(self, repo: Repository) -> bool:
        try:
            report = await self._repo_sync.sync(repo)
        except SYNC_FAILURES as exc:
            log.warning(
                "github sync failed, skipped this round", extra={"repo": str(repo), "error": repr(exc)}
            )
            return False
        log.info(
            "github sync done",
            extra={
                "repo": str(repo),
                "issues": report.issues,
                "pull_requests": report.pull_requests,
                "not_modified": report.not_modified,
            },
        )
        return True

    async def run_forever(self, heartbeat: LoopHeartbeat) -> None:
        """Rounds every interval, requests in between; cancel it to stop (state is always consistent)."""
        await run_rounds(self.sync_all, self._serve, self._requests, self._interval, heartbeat)

    async def _serve(self, request: ProducerRequest) -> None:
        try:
            repo = Repository.parse(request.fields.get(GitHubSyncRequestField.REPO, ""))
        except ValueError as exc:
            log.warning("sync request dropped", extra={"request": request.id, "error": str(exc)})
            return
        log.info("sync requested", extra={"repo": str(repo), "request": request.id})
        await self.sync_one(repo)
