"""What this poller already handed over: the ids recently sent per subreddit, the last ETag per listing.

Memory only, bounded, and lost on restart, because it is an optimisation and not a guarantee: the
ingest group dedupes on the post id, so forgetting costs a resend, never a duplicate item. Hot and
top listings are not ordered by time, so "the newest post sent" cannot tell what is new in them; a
window of recently sent ids (larger than all of a subreddit's listings together) can, for every
sort alike, and a post that shows up in both `new` and `hot` is sent once.

Nothing is recorded before the API accepted it (202): a listing whose posts were not all handed
over keeps its old ETag, so the next round gets the full listing again instead of a 304.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, TypeVar

from services.poller.reddit.listing import LISTING_LIMIT, SORTS, Listing

V = TypeVar("V")


def post_id(child: dict[str, Any]) -> str:
    return str(child["data"].get("id") or child["data"].get("name") or "")


def _touch(entries: OrderedDict[str, V], key: str, value: V, limit: int) -> V:
    """Sets or refreshes `key` as the most recent entry, forgetting the oldest past `limit`."""
    entries[key] = value
    entries.move_to_end(key)
    while len(entries) > limit:
        entries.popitem(last=False)
    return value


class HandoverMemory:
    def __init__(
        self, ids_per_subreddit: int = 2 * len(SORTS) * LISTING_LIMIT, max_subreddits: int = 1_000
    ) -> None:
        self._ids_per_subreddit = ids_per_subreddit
        self._max_subreddits = max_subreddits
        self._sent: OrderedDict[str, OrderedDict[str, None]] = OrderedDict()
        self._etags: OrderedDict[str, str | None] = OrderedDict()

    def _sent_ids(self, listing: Listing) -> OrderedDict[str, None]:
        sent = self._sent.get(listing.subreddit, OrderedDict())
        return _touch(self._sent, listing.subreddit, sent, self._max_subreddits)

    def etag(self, listing: Listing) -> str | None:
        return self._etags.get(listing.key)

    def unsent(self, listing: Listing, posts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """Posts not handed over recently; the ones seen again are kept fresh in memory."""
        sent = self._sent_ids(listing)
        fresh = []
        for child in posts:
            if post_id(child) in sent:
                sent.move_to_end(post_id(child))
            else:
                fresh.append(child)
        return fresh

    def record_sent(self, listing: Listing, posts: Iterable[dict[str, Any]]) -> None:
        sent = self._sent_ids(listing)
        for child in posts:
            _touch(sent, post_id(child), None, self._ids_per_subreddit)

    def record_etag(self, listing: Listing, etag: str | None) -> None:
        """Call only once every post of the listing has been handed over."""
        _touch(self._etags, listing.key, etag, self._max_subreddits * len(SORTS))
