"""GitHub's REST issues listing on 127.0.0.1, serving real issue objects the way api.github.com does.

What it imitates, because the sync depends on it: `state`/`since`/`sort`/`direction` filtering,
pagination with `Link` headers (a small `page_size` forces several pages), weak ETags computed from
the body with `If-None-Match` answered 304, `X-RateLimit-*` headers, and 404 for unknown
repositories. Scripted failures (a 403 with `Retry-After`) come from `fail_next`.
"""

from __future__ import annotations

import hashlib
import json
import time
from copy import deepcopy
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from services.dev.stand_ins.scripted_http_server import RecordedRequest, Reply, ScriptedHttpServer

RATE_LIMIT = 5000


@dataclass(frozen=True)
class ServedReply:
    path: str
    status: int
    sent_at: float  # wall clock, comparable with X-RateLimit-Reset


class GitHubServer(ScriptedHttpServer):
    def __init__(self, page_size: int = 100) -> None:
        super().__init__()
        self.page_size = page_size
        self.issues: dict[str, list[dict[str, Any]]] = {}
        self.broken: set[str] = set()  # repositories answering 502 to everything
        self.replies: list[ServedReply] = []  # every routed reply, in order
        self.rate_limit_remaining = RATE_LIMIT
        self.rate_limit_reset = int(time.time()) + 3600

    def put_issue(self, repo: str, issue: dict[str, Any]) -> None:
        """Adds or replaces (by `id`) an issue, as an edit or a close on GitHub would."""
        with self._lock:
            listing = [item for item in self.issues.setdefault(repo, []) if item["id"] != issue["id"]]
            self.issues[repo] = [*listing, deepcopy(issue)]

    def listing_requests(self, repo: str) -> list[RecordedRequest]:
        return self.requests_to(f"/repos/{repo}/issues")

    def route(self, request: RecordedRequest) -> Reply:
        reply = self._route(request)
        self.replies.append(ServedReply(request.path, reply.status, time.time()))
        return reply

    def _route(self, request: RecordedRequest) -> Reply:
        parts = request.path.strip("/").split("/")
        if len(parts) != 4 or parts[0] != "repos" or parts[3] != "issues" or request.method != "GET":
            return Reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        repo = f"{parts[1]}/{parts[2]}"
        if repo in self.broken:
            return Reply(502, raw=b"<html><body>502 Bad Gateway</body></html>")
        if repo not in self.issues:
            return Reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})
        query = {name: values[-1] for name, values in parse_qs(request.query).items()}
        matching = self._matching(self.issues[repo], query)
        page = int(query.get("page", "1"))
        size = min(int(query.get("per_page", "30")), self.page_size)
        body = matching[(page - 1) * size : page * size]
        headers = self._rate_limit_headers()
        etag = 'W/"' + hashlib.sha256(json.dumps(body).encode()).hexdigest() + '"'
        headers["ETag"] = etag
        if request.headers.get("if-none-match") == etag:
            return Reply(304, raw=b"", headers=headers)
        if page * size < len(matching):
            headers["Link"] = self._link(request.path, query, page + 1, -(-len(matching) // size))
        return Reply(200, body, headers=headers)

    @staticmethod
    def _matching(issues: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
        state = query.get("state", "open")
        since = query.get("since")
        selected = [
            issue
            for issue in issues
            if (state == "all" or issue["state"] == state) and (since is None or issue["updated_at"] >= since)
        ]
        key = "updated_at" if query.get("sort") == "updated" else "created_at"
        return sorted(selected, key=lambda issue: issue[key], reverse=query.get("direction") != "asc")

    def _link(self, path: str, query: dict[str, str], next_page: int, last_page: int) -> str:
        def page_url(page: int) -> str:
            return f"{self.url}{path}?{urlencode({**query, 'page': str(page)})}"

        return f'<{page_url(next_page)}>; rel="next", <{page_url(last_page)}>; rel="last"'

    def _rate_limit_headers(self) -> dict[str, str]:
        """Each reply spends one request; the budget refills at the reset time, as GitHub's does."""
        if time.time() >= self.rate_limit_reset:
            self.rate_limit_remaining = RATE_LIMIT
            self.rate_limit_reset = int(time.time()) + 3600
        self.rate_limit_remaining = max(self.rate_limit_remaining - 1, 0)
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(self.rate_limit_remaining),
            "X-RateLimit-Reset": str(self.rate_limit_reset),
            "X-RateLimit-Used": str(RATE_LIMIT - self.rate_limit_remaining),
            "X-RateLimit-Resource": "core",
        }
