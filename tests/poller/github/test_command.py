"""`soulcaster github-sync --once` as an operator runs it: configured by environment, judged by exit code."""

from __future__ import annotations

import asyncio
import os
import sys

from redis.asyncio import Redis

from services.cli import main
from shared.keys import Keys
from tests.poller.github.conftest import ADMIN_KEY, PROBOT, PRODUCER_KEY
from tests.support.github_server import GitHubServer
from tests.support.paths import REPO_ROOT
from tests.support.pipeline import Pipeline


async def github_sync(pipeline: Pipeline, github: GitHubServer, *args: str) -> int:
    env = {
        **os.environ,
        "INGEST_API_URL": pipeline.api_url,
        "INGEST_API_KEY": PRODUCER_KEY,
        "ADMIN_API_KEY": ADMIN_KEY,
        "GITHUB_API_URL": github.url,
        "GITHUB_TOKEN": "ghp_from_env",
        "GITHUB_REPOS": str(PROBOT),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.cli", "github-sync", "--once", *args, env=env, cwd=REPO_ROOT
    )
    return await process.wait()


async def test_once_syncs_the_configured_repositories_and_exits_zero(
    pipeline: Pipeline, github: GitHubServer, redis: Redis, keys: Keys
) -> None:
    assert await github_sync(pipeline, github) == 0

    await asyncio.to_thread(pipeline.wait_until_ingested)
    assert await redis.zcard(keys.feedback_source("github")) == 4
    assert github.listing_requests(str(PROBOT))[0].headers["authorization"] == "Bearer ghp_from_env"


async def test_once_exits_one_when_a_repository_failed(pipeline: Pipeline, github: GitHubServer) -> None:
    assert await github_sync(pipeline, github, "--repo", "ghost/missing") == 1
    assert github.listing_requests("ghost/missing")
    assert github.listing_requests(str(PROBOT)) == []  # --repo replaces GITHUB_REPOS


def test_bad_repository_names_exit_two_before_any_request() -> None:
    assert main(["github-sync", "--once", "--repo", "not-a-repo"]) == 2
