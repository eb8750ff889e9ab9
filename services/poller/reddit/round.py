"""One polling round: fetch each listing, hand its new posts to the ingest API, remember what landed.

A listing Reddit will not serve (after retries) is skipped and logged, and the others go on. The
ingest API being unreachable ends the round instead: every other listing would fail the same way,
and nothing was recorded for the posts in hand, so the next round fetches and sends them again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.poller.producer.batches import json_batches
from services.poller.producer.ingest_client import IngestApiClient, IngestApiRejected
from services.poller.reddit.auth import RedditAuthFailed
from services.poller.reddit.handover_memory import HandoverMemory
from services.poller.reddit.listing import Listing, ListingRefused, RedditClient
from shared.retry_policy import RemoteUnavailableError

log = logging.getLogger(__name__)

INGEST_PATH = "/ingest/reddit"
UNREACHABLE = (RemoteUnavailableError,)


class IngestUnavailable(Exception):
    """The ingest API did not accept a batch after retries, or refused this producer's key."""


class BatchRejected(Exception):
    """The API refused one batch as invalid; its listing is skipped (and retried next round)."""


@dataclass
class RoundReport:
    handed_over: int = 0
    not_modified: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # listing key -> why
    ingest_error: str = ""

    @property
    def complete(self) -> bool:
        """Every listing was read and every new post in it accepted by the API."""
        return not self.skipped and not self.ingest_error


class RedditRound:
    def __init__(
        self,
        reddit: RedditClient,
        ingest: IngestApiClient,
        memory: HandoverMemory,
        *,
        batch_items: int = 100,
        batch_bytes: int = 512 * 1024,
    ) -> None:
        self._reddit = reddit
        self._ingest = ingest
        self._memory = memory
        self._batch_items = batch_items
        self._batch_bytes = batch_bytes

    async def run(self, listings: Sequence[Listing]) -> RoundReport:
        report = RoundReport()
        for listing in listings:
            try:
                await self._poll(listing, report)
            except (ListingRefused, RedditAuthFailed, BatchRejected, *UNREACHABLE) as error:
                report.skipped[listing.key] = str(error) or type(error).__name__
                log.warning("listing skipped this round", extra={"listing": listing.key, "error": str(error)})
            except IngestUnavailable as error:
                report.ingest_error = str(error)
                log.error("ingest API unavailable, round ends", extra={"error": str(error)})
                break
        log.info(
            "round done",
            extra={
                "handed_over": report.handed_over,
                "not_modified": report.not_modified,
                "skipped": len(report.skipped),
                "ingest_error": report.ingest_error,
            },
        )
        return report

    async def _poll(self, listing: Listing, report: RoundReport) -> None:
        page = await self._reddit.fetch(listing, self._memory.etag(listing))
        if page.not_modified:
            report.not_modified += 1
            return
        fresh = self._memory.unsent(listing, page.posts)
        for batch in json_batches(fresh, self._batch_items, self._batch_bytes):
            await self._hand_over(batch)
            self._memory.record_sent(listing, batch)
            report.handed_over += len(batch)
        self._memory.record_etag(listing, page.etag)

    async def _hand_over(self, batch: list[object]) -> None:
        """Returns once the API answered 202 for the whole batch."""
        try:
            await self._ingest.ingest(INGEST_PATH, batch)
        except IngestApiRejected as error:
            if error.status_code in (401, 403):
                raise IngestUnavailable(str(error)) from error
            raise BatchRejected(str(error)) from error
        except UNREACHABLE as error:
            raise IngestUnavailable(str(error) or type(error).__name__) from error
