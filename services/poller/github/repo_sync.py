"""One sync of one repository: fetch what changed, hand it to the ingest API, then advance the cursor.

The cursor moves only after the API accepted (202) the page it covers, so a crash or a refusal at
any point leaves a state from which the next sync fetches everything not yet handed over.
Pull requests share the issues listing; they move the cursor but are never handed over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from services.poller.github.issues_api import GitHubIssues
from services.poller.github.state_store import SyncStateStore
from services.poller.producer.ingest_client import IngestApiClient
from shared.github_repository import Repository

INGEST_PATH = "/ingest/github"


@dataclass(frozen=True)
class SyncReport:
    repo: Repository
    issues: int = 0
    pull_requests: int = 0
    not_modified: bool = False


class RepoSync:
    def __init__(
        self,
        github: GitHubIssues,
        ingest: IngestApiClient,
        states: SyncStateStore,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._github = github
        self._ingest = ingest
        self._states = states
        self._now = now

    async def sync(self, repo: Repository) -> SyncReport:
        state = await self._states.load(repo)
        report = SyncReport(repo)
        async for page in self._github.pages(repo, state):
            if page.not_modified:
                report = SyncReport(repo, not_modified=True)
                break
            issues = [item for item in page.items if "pull_request" not in item]
            if issues:
                await self._ingest.ingest(INGEST_PATH, issues)
            state = state.after_page(page.items, page.etag)
            await self._states.save(repo, state)
            report = SyncReport(
                repo, report.issues + len(issues), report.pull_requests + len(page.items) - len(issues)
            )
        await self._states.save(repo, state.completed(self._now()))
        return report
