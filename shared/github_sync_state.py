"""What the sync remembers about one repository between runs, stored through the ingest API.

The cursor (`last_updated_at`) only moves after the issues up to it were accepted (202), so a crash
never skips an issue; GitHub's `since` is inclusive, so the newest issue is seen again next time and
becomes an in-place update, which the ingest worker applies without re-announcing it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict


class RepoSyncState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    last_updated_at: AwareDatetime | None = None
    etag: str | None = None
    last_synced_at: AwareDatetime | None = None

    @property
    def first_sync(self) -> bool:
        """No cursor yet: fetch only open issues (closed ones were never stored, nothing to archive)."""
        return self.last_updated_at is None

    def since_param(self) -> str | None:
        if self.last_updated_at is None:
            return None
        return self.last_updated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def after_page(self, issues: Iterable[Mapping[str, Any]], etag: str | None) -> RepoSyncState:
        """The state once a page was handed over: cursor at its newest `updated_at`, ETag if given."""
        seen = [datetime.fromisoformat(issue["updated_at"]) for issue in issues if issue.get("updated_at")]
        newest = max([*seen, *([self.last_updated_at] if self.last_updated_at else [])], default=None)
        return self.model_copy(update={"last_updated_at": newest, "etag": etag or self.etag})

    def completed(self, now: datetime) -> RepoSyncState:
        return self.model_copy(update={"last_synced_at": now})
