"""Showing the poller at work on a laptop: one round against a given ingest API.

Without network (or when asked), a tiny Reddit-shaped server on 127.0.0.1 serves `demo_listing.json`,
with ETags; each subreddit gets that listing's posts from it. The listing is product feedback about
a SaaS app in the shape of a real Reddit listing (derived, not captured: tests/fixtures/SOURCES.md),
in a few clear themes (login and SSO loops, CSV export bugs, dark mode, billing, slowness), so a
first-time user's clusters make sense; the demo subreddits `saasfeedback` and `sysadmin` yield its
25 posts. `soulcaster dev` calls `demo_round(api_url)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from services.poller.reddit.process import RedditPoller
from services.poller.reddit.round import RoundReport
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

DEMO_LISTING = Path(__file__).with_name("demo_listing.json")
DEMO_SUBREDDITS = ("saasfeedback", "sysadmin")
REACHABILITY_TIMEOUT_SECONDS = 3.0


def _listing_for(subreddit: str) -> bytes:
    listing: dict[str, Any] = json.loads(DEMO_LISTING.read_text())
    children = listing["data"]["children"]
    listing["data"]["children"] = [c for c in children if c["data"]["subreddit"].lower() == subreddit]
    return json.dumps(listing).encode()


def _response(status: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """GET /r/{subreddit}/{sort}.json with If-None-Match; anything else is a 404, like Reddit's."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    path = head[0].split()[1].split("?", 1)[0] if len(head[0].split()) > 1 else ""
    sent_etag = next(
        (line.split(":", 1)[1].strip() for line in head if line.lower().startswith("if-none-match:")), ""
    )
    parts = path.strip("/").split("/")
    if len(parts) == 3 and parts[0] == "r" and parts[2].endswith(".json"):
        body = _listing_for(parts[1].lower())
        etag = '"' + hashlib.sha1(body).hexdigest() + '"'
        answer = (
            _response("304 Not Modified", b"", {"ETag": etag})
            if sent_etag == etag
            else _response("200 OK", body, {"ETag": etag, "Content-Type": "application/json"})
        )
    else:
        answer = _response("404 Not Found", b'{"message": "Not Found", "error": 404}', {})
    writer.write(answer)
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def local_reddit() -> AsyncIterator[str]:
    """The Reddit-shaped server on a free port; yields its base URL."""
    server = await asyncio.start_server(_serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def reddit_reachable(settings: Settings) -> bool:
    try:
        async with httpx.AsyncClient(timeout=REACHABILITY_TIMEOUT_SECONDS) as http:
            await http.head(settings.reddit_base_url, headers={"User-Agent": settings.reddit_user_agent})
    except httpx.HTTPError:
        return False
    return True


async def demo_round(
    api_url: str,
    subreddits: Sequence[str] = DEMO_SUBREDDITS,
    use_reddit: bool | None = None,
    settings: Settings | None = None,
) -> RoundReport:
    """One round into `api_url`; `use_reddit` None: Reddit itself when reachable, else the local server."""
    settings = (settings or get_settings()).model_copy(update={"ingest_api_url": api_url})
    if use_reddit is None:
        use_reddit = await reddit_reachable(settings)
    async with contextlib.AsyncExitStack() as stack:
        if not use_reddit:
            local = await stack.enter_async_context(local_reddit())
            settings = settings.model_copy(
                update={"reddit_base_url": local, "reddit_client_id": "", "reddit_client_secret": ""}
            )
        log.info("demo poll", extra={"reddit": settings.reddit_base_url, "subreddits": list(subreddits)})
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=10.0))
        return await RedditPoller(
            settings, http, subreddit_flags=subreddits, sort_flags=["new"]
        ).poll_configured()
