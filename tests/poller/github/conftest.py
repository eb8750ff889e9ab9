"""A GitHub REST server with the real fixture issues, the real ingest API and worker, and sync rounds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from services.poller.github.sync_process import GitHubSyncProcess
from shared.github_repository import Repository
from shared.retry_policy import RetryPolicy
from shared.settings import Settings
from tests.support.github_server import GitHubServer
from tests.support.paths import FIXTURES as ALL_FIXTURES
from tests.support.pipeline import Pipeline, running_pipeline

FIXTURES = ALL_FIXTURES / "github"
PROBOT = Repository("bkeepers", "PRobot")
NOMER = Repository("globalbioticinteractions", "nomer")
TINY_RETRY = RetryPolicy(attempts=3, initial_delay_seconds=0.01, max_delay_seconds=2.0)
ADMIN_KEY = "admin-secret"
PRODUCER_KEY = "producer-secret"


def probot_issues() -> list[dict[str, Any]]:
    """Four issues and one pull request (#62), as GitHub listed them in 2016."""
    issues: list[dict[str, Any]] = json.loads((FIXTURES / "rest_issues_page1.json").read_text())
    return issues


def nomer_closed() -> dict[str, Any]:
    closed: dict[str, Any] = json.loads((FIXTURES / "rest_issue_closed.json").read_text())
    return closed


def nomer_open() -> dict[str, Any]:
    """DERIVED from the closed capture: the same issue as it was before it was closed."""
    return {
        **nomer_closed(),
        "state": "open",
        "state_reason": None,
        "closed_at": None,
        "closed_by": None,
        "updated_at": "2019-12-20T10:00:00Z",
    }


@pytest.fixture
def github() -> Iterator[GitHubServer]:
    with GitHubServer(page_size=2) as server:
        for issue in probot_issues():
            server.put_issue(str(PROBOT), issue)
        server.put_issue(str(NOMER), nomer_open())
        yield server


@pytest.fixture
def pipeline(settings: Settings, redis: Redis) -> Iterator[Pipeline]:
    """After `redis`, whose flush would otherwise delete the worker's consumer group."""
    api_settings = settings.model_copy(update={"admin_api_key": ADMIN_KEY, "ingest_api_keys": [PRODUCER_KEY]})
    with running_pipeline(api_settings) as running:
        yield running


@pytest.fixture
def sync_settings(settings: Settings, pipeline: Pipeline, github: GitHubServer) -> Settings:
    return settings.model_copy(
        update={
            "ingest_api_url": pipeline.api_url,
            "ingest_api_key": PRODUCER_KEY,
            "admin_api_key": ADMIN_KEY,
            "github_api_url": github.url,
            "github_token": "ghp_test_token",
        }
    )


async def sync_round(settings: Settings, pipeline: Pipeline, *repos: Repository) -> list[Repository]:
    """A fresh sync process each round, as after a restart: it remembers nothing on its own."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        process = GitHubSyncProcess.from_settings(settings, http, repos, 3600.0, TINY_RETRY)
        failed = await process.sync_all()
    await asyncio.to_thread(pipeline.wait_until_ingested)
    return failed
