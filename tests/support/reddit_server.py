"""A Reddit-shaped server on 127.0.0.1: listings, ETags, app-only OAuth and scripted failures.

Listings are the captured ones in tests/fixtures/reddit (see SOURCES.md there): `/r/{sub}/{sort}.json`
serves the children of the `{sort}` fixture whose `subreddit` is `sub`, so `gaming`, `gifs` and
`nintendo` have one real post each. Answers carry Reddit's headers (ETag, `X-Ratelimit-*`) and its
error bodies; `fail_next` queues replies (429 with Retry-After, 500, ...) and `drop_next` closes
connections without an answer, as a flaky network does.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

from services.dev.stand_ins.scripted_http_server import RecordedRequest, Reply, ScriptedHttpServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reddit"
LISTING_FILES = {"new": "listing_new.json", "hot": "listing_hot.json"}


class ConnectionDropped(Exception):
    """Raised inside the handler: the server closes the socket without writing a response."""


def fixture_children(sort: str = "new") -> list[dict[str, Any]]:
    listing = json.loads((FIXTURES / LISTING_FILES[sort]).read_text())
    children: list[dict[str, Any]] = listing["data"]["children"]
    return children


def reddit_error(status: int, message: str) -> Reply:
    return Reply(status, {"message": message, "error": status})


def too_many_requests(retry_after: int) -> Reply:
    return Reply(
        429,
        {"message": "Too Many Requests", "error": 429},
        headers={
            "Retry-After": str(retry_after),
            "X-Ratelimit-Remaining": "0",
            "X-Ratelimit-Reset": str(retry_after),
        },
    )


class RedditServer(ScriptedHttpServer):
    def __init__(self, client_id: str = "", client_secret: str = "", token_lifetime: int = 3600) -> None:
        super().__init__()
        self._credentials = (client_id, client_secret)
        self._token_lifetime = token_lifetime
        self.issued_tokens: list[str] = []
        self._valid_tokens: set[str] = set()
        self._extra_posts: dict[str, list[dict[str, Any]]] = {}
        self._drops = 0

    # scripting
    def drop_next(self, count: int = 1) -> None:
        with self._lock:
            self._drops += count

    def revoke_tokens(self) -> None:
        with self._lock:
            self._valid_tokens.clear()

    def add_post(self, subreddit: str, post_id: str, title: str) -> dict[str, Any]:
        """A new post on top of `subreddit`'s listings (a copy of a real one with a new id and title)."""
        child = copy.deepcopy(fixture_children()[0])
        child["data"].update(
            id=post_id,
            name=f"t3_{post_id}",
            title=title,
            subreddit=subreddit,
            permalink=f"/r/{subreddit}/comments/{post_id}/",
        )
        with self._lock:
            self._extra_posts.setdefault(subreddit, []).insert(0, child)
        return child

    def listing_requests(self) -> list[RecordedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path.startswith("/r/")]

    # serving
    def _serve(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._drops:
                self._drops -= 1
                self.requests.append(request)
                raise ConnectionDropped(request.path)
        return super()._serve(request)

    def route(self, request: RecordedRequest) -> Reply:
        if request.path == "/api/v1/access_token":
            return self._token(request)
        parts = request.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "r" or not parts[2].endswith(".json"):
            return reddit_error(404, "Not Found")
        if self._credentials[0] and not self._authorized(request):
            return reddit_error(401, "Unauthorized")
        return self._listing(request, parts[1], parts[2].removesuffix(".json"))

    def _token(self, request: RecordedRequest) -> Reply:
        expected = base64.b64encode(":".join(self._credentials).encode()).decode()
        if request.headers.get(
            "authorization"
        ) != f"Basic {expected}" or "grant_type=client_credentials" not in str(request.body):
            return reddit_error(401, "Unauthorized")
        token = f"token-{len(self.issued_tokens) + 1}"
        self.issued_tokens.append(token)
        self._valid_tokens.add(token)
        return Reply(
            200,
            {"access_token": token, "token_type": "bearer", "expires_in": self._token_lifetime, "scope": "*"},
        )

    def _authorized(self, request: RecordedRequest) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token in self._valid_tokens

    def _listing(self, request: RecordedRequest, subreddit: str, sort: str) -> Reply:
        if sort not in LISTING_FILES:
            return reddit_error(404, "Not Found")
        real = [child for child in fixture_children(sort) if child["data"]["subreddit"].lower() == subreddit]
        children = self._extra_posts.get(subreddit, []) + real
        body = {
            "kind": "Listing",
            "data": {"modhash": "", "children": children, "after": None, "before": None},
        }
        etag = '"' + hashlib.sha1(json.dumps(body).encode()).hexdigest() + '"'
        headers = {
            "ETag": etag,
            "X-Ratelimit-Remaining": "99",
            "X-Ratelimit-Used": "1",
            "X-Ratelimit-Reset": "60",
        }
        if request.headers.get("if-none-match") == etag:
            return Reply(304, raw=b"", headers=headers)
        return Reply(200, body, headers=headers)
