"""Subreddit names as the API stores them and the poller requests them: one rule for both.

A name goes into a URL path (`/r/{name}/new.json`), so anything outside Reddit's own rule is refused
rather than escaped: 3 to 21 characters of `a-z`, `0-9` and `_`, not starting with `_`. Reddit
names are case-insensitive, so they are kept lowercase; an `r/` prefix is forgiven.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from shared.settings import Settings

log = logging.getLogger(__name__)

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_]{2,20}")


class InvalidSubreddits(ValueError):
    """The reason names the offending entries, so a 400 tells the caller what to fix."""


def _reason(name: str) -> str | None:
    if NAME_PATTERN.fullmatch(name):
        return None
    if not 3 <= len(name) <= 21:
        return f"{name!r} must be 3 to 21 characters long"
    if name.startswith("_"):
        return f"{name!r} must not start with '_'"
    return f"{name!r} may contain only letters, digits and '_'"


def normalize_subreddits(names: Iterable[str]) -> list[str]:
    """Trimmed, lowercased, `r/` dropped, empties dropped, deduplicated in order; raises if any is invalid."""
    cleaned: list[str] = []
    for raw in names:
        name = raw.strip().lower().removeprefix("/").removeprefix("r/")
        if name and name not in cleaned:
            cleaned.append(name)
    problems = [reason for name in cleaned if (reason := _reason(name))]
    if problems:
        raise InvalidSubreddits("invalid subreddit names: " + "; ".join(problems))
    if not cleaned:
        raise InvalidSubreddits("at least one subreddit is required")
    return cleaned


def subreddits_from_env(settings: Settings) -> list[str]:
    """`REDDIT_SUBREDDITS`, else the legacy single `REDDIT_SUBREDDIT`; empty when neither is set."""
    names = settings.reddit_subreddits or [settings.reddit_subreddit]
    try:
        return normalize_subreddits(names)
    except InvalidSubreddits as error:
        if any(name.strip() for name in names):
            log.error("ignoring REDDIT_SUBREDDITS", extra={"error": str(error)})
        return []
