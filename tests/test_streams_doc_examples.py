"""docs/streams.md's Python examples, run as written: publishing with `IngestPublisher` and following
new items with a consumer group of one's own through the consumer runtime."""

from __future__ import annotations

import ast
import asyncio
import re
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from redis.asyncio import Redis

from shared import contracts
from shared.keys import IngestField, Keys
from shared.models import item_id_for
from shared.publisher import IngestPublisher, RawEvent
from shared.settings import Settings
from tests.support.paths import REPO_ROOT
from tests.support.pipeline import running_pipeline

STREAMS_DOC = REPO_ROOT / "docs" / "streams.md"
DOC_REDIS_URL = "redis://127.0.0.1:6379/0"
PATIENCE_SECONDS = 30


def python_example(containing: str) -> str:
    """The one ```python block of docs/streams.md that contains `containing`."""
    blocks = re.findall(r"^```python\n(.*?)^```$", STREAMS_DOC.read_text(encoding="utf-8"), re.M | re.S)
    found = [block for block in blocks if containing in block]
    assert len(found) == 1, f"expected one python example with {containing!r}, found {len(found)}"
    return str(found[0])


async def run_example(source: str, namespace: dict[str, Any]) -> None:
    """Run a snippet written with top-level `await`, as in an asyncio REPL."""
    code = compile(source, str(STREAMS_DOC), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)
    if asyncio.iscoroutine(result):
        await result


def ingest_everything(settings: Settings) -> None:
    with running_pipeline(settings, api=False) as pipeline:
        pipeline.wait_until_ingested()


async def test_the_publishing_example_appends_an_event_that_is_stored(
    redis: Redis, redis_url: str, settings: Settings
) -> None:
    example = python_example("IngestPublisher(")
    assert DOC_REDIS_URL in example
    namespace: dict[str, Any] = {}
    await run_example(example.replace(DOC_REDIS_URL, redis_url), namespace)
    await namespace["redis"].aclose()

    keys = Keys()
    [(entry_id, fields)] = await redis.xrange(keys.ingest_stream)
    assert entry_id == namespace["event_id"]
    assert fields[IngestField.PRODUCER] == "my-service"
    assert Draft202012Validator(contracts.load_schema(contracts.INGEST_ENTRY)).is_valid(fields)
    await asyncio.to_thread(ingest_everything, settings)
    item_id = item_id_for("datadog", "alert-42", entry_id)
    assert await redis.get(keys.feedback_external("datadog", "alert-42")) == item_id
    assert await redis.hget(keys.feedback(item_id), "title") == "p99 above 2 s"


async def test_the_subscribing_example_reads_and_acks_every_new_item(
    redis: Redis,
    redis_url: str,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    keys = Keys()
    publisher = IngestPublisher(redis, keys, producer="test")
    await publisher.publish_many(
        [
            RawEvent.from_json("manual", {"text": f"Sync stalls on file {n}", "title": f"stall {n}"})
            for n in range(3)
        ]
    )
    await asyncio.to_thread(ingest_everything, settings)
    for name, value in {"REDIS_URL": redis_url, "CONSUMER_NAME": "reader-1", "READ_BLOCK_MS": "100"}.items():
        monkeypatch.setenv(name, value)

    namespace: dict[str, Any] = {}
    running = asyncio.create_task(run_example(python_example("StreamConsumer("), namespace))
    deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
    try:
        while not await group_done(redis, keys.new_item_stream, "my-service"):
            assert not running.done(), running.exception()
            assert asyncio.get_running_loop().time() < deadline, "the example's group never caught up"
            await asyncio.sleep(0.05)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await namespace["redis"].aclose()

    printed = capsys.readouterr().out.splitlines()
    assert sorted(printed) == [f"manual stall {n}" for n in range(3)]


async def group_done(redis: Redis, stream: str, group: str) -> bool:
    groups = {g["name"]: g for g in await redis.xinfo_groups(stream)}
    state = groups.get(group)
    return bool(state and state["lag"] == 0 and state["pending"] == 0 and state["entries-read"])
