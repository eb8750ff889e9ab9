"""App-only OAuth on the Reddit-shaped server: the token request, its reuse, refresh on 401 and expiry."""

from __future__ import annotations

import base64

import httpx

from services.poller.producer.throttle import Throttle
from services.poller.reddit.auth import RedditAppAuth
from services.poller.reddit.listing import Listing, RedditClient, reddit_retry_after
from tests.poller.reddit.conftest import TINY_RETRY
from tests.support.reddit_server import RedditServer, too_many_requests

CLIENT_ID, CLIENT_SECRET = "app-id", "app-secret"
USER_AGENT = "linux:soulcaster-tests:0.1 (by /u/soulcaster)"


class SteppedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def oauth_client(http: httpx.AsyncClient, server: RedditServer, clock: SteppedClock) -> RedditClient:
    auth = RedditAppAuth(
        http,
        base_url=server.url,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        user_agent=USER_AGENT,
        retry=TINY_RETRY,
        clock=clock,
    )
    return RedditClient(
        http, base_url=server.url, user_agent=USER_AGENT, throttle=Throttle(0.0), retry=TINY_RETRY, auth=auth
    )


async def test_token_is_requested_with_basic_auth_and_reused() -> None:
    with RedditServer(CLIENT_ID, CLIENT_SECRET) as server:
        async with httpx.AsyncClient() as http:
            client = oauth_client(http, server, SteppedClock())
            first = await client.fetch(Listing("gaming", "new"), None)
            await client.fetch(Listing("gifs", "new"), None)

    token_requests = server.requests_to("/api/v1/access_token")
    assert len(token_requests) == 1
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    assert token_requests[0].headers["authorization"] == f"Basic {basic}"
    assert token_requests[0].body == "grant_type=client_credentials"
    assert token_requests[0].headers["user-agent"] == USER_AGENT
    assert [r.headers["authorization"] for r in server.listing_requests()] == ["bearer token-1"] * 2
    assert [child["data"]["id"] for child in first.posts] == ["58hakw"]


async def test_a_refused_token_is_replaced_and_the_request_repeated() -> None:
    with RedditServer(CLIENT_ID, CLIENT_SECRET) as server:
        async with httpx.AsyncClient() as http:
            client = oauth_client(http, server, SteppedClock())
            await client.fetch(Listing("gaming", "new"), None)
            server.revoke_tokens()
            page = await client.fetch(Listing("gaming", "new"), None)

    assert server.issued_tokens == ["token-1", "token-2"]
    statuses = [r.headers["authorization"] for r in server.listing_requests()]
    assert statuses == ["bearer token-1", "bearer token-1", "bearer token-2"]
    assert len(page.posts) == 1


async def test_an_expiring_token_is_renewed_before_use() -> None:
    clock = SteppedClock()
    with RedditServer(CLIENT_ID, CLIENT_SECRET, token_lifetime=3600) as server:
        async with httpx.AsyncClient() as http:
            client = oauth_client(http, server, clock)
            await client.fetch(Listing("gaming", "new"), None)
            clock.now += 3600 - 30  # inside the safety margin
            await client.fetch(Listing("gaming", "new"), None)

    assert server.issued_tokens == ["token-1", "token-2"]
    assert [r.headers["authorization"] for r in server.listing_requests()] == [
        "bearer token-1",
        "bearer token-2",
    ]


async def test_wrong_credentials_never_reach_the_listings() -> None:
    from services.poller.reddit.auth import RedditAuthFailed

    with RedditServer(CLIENT_ID, "another-secret") as server:
        async with httpx.AsyncClient() as http:
            client = oauth_client(http, server, SteppedClock())
            try:
                await client.fetch(Listing("gaming", "new"), None)
            except RedditAuthFailed as error:
                assert "401" in str(error)
            else:
                raise AssertionError("wrong credentials were accepted")
    assert server.listing_requests() == []


async def test_the_wait_reddit_asks_for_is_the_wait_taken() -> None:
    with RedditServer() as server:
        server.fail_next(too_many_requests(retry_after=7))
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{server.url}/r/gaming/new.json")
    assert reddit_retry_after(response) == 7.0
    assert TINY_RETRY.max_delay_seconds < 7.0  # tests cap it; production (64 s) waits the full 7 s


async def test_a_spent_quota_holds_the_next_request_until_the_reset() -> None:
    from services.dev.stand_ins.scripted_http_server import Reply
    from tests.poller.reddit.test_throttle import FakeClock

    clock = FakeClock()
    throttle = Throttle(0.0, clock=clock, sleep=clock.sleep)
    spent = {"X-Ratelimit-Remaining": "0", "X-Ratelimit-Used": "100", "X-Ratelimit-Reset": "42"}
    with RedditServer() as server:
        server.fail_next(Reply(200, {"kind": "Listing", "data": {"children": []}}, headers=spent))
        async with httpx.AsyncClient() as http:
            client = RedditClient(
                http, base_url=server.url, user_agent=USER_AGENT, throttle=throttle, retry=TINY_RETRY
            )
            await client.fetch(Listing("gaming", "new"), None)
            await client.fetch(Listing("gifs", "new"), None)
    assert clock.sleeps == [42.0]
