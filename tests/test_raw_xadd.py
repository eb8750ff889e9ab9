"""docs/streams.md's `redis-cli` examples, run exactly as written against a real Redis.

An event published with a raw `XADD` (not the Python publisher) is stored and clustered by the real
ingest worker and clusterer, and a consumer group of one's own sees and acks the new item.
"""

from __future__ import annotations

import asyncio
import shlex

from redis.asyncio import Redis

from services.clusterer.worker import build_clusterer_consumer
from services.ingest.outcomes import read_outcome
from services.ingest.worker import build_ingest_consumer
from shared.keys import Keys, NewItemField
from shared.models import item_id_for
from shared.settings import Settings
from tests.support.paths import REPO_ROOT
from tests.support.waiting import run_consumers

STREAMS_DOC = REPO_ROOT / "docs" / "streams.md"


def documented(command_start: str) -> list[str]:
    """The one command line in docs/streams.md that begins with `command_start`, split as a shell would."""
    lines = [
        line
        for line in STREAMS_DOC.read_text(encoding="utf-8").splitlines()
        if line.startswith(command_start)
    ]
    assert len(lines) == 1, f"docs/streams.md should show `{command_start} ...` once, found {lines}"
    return shlex.split(lines[0])


async def redis_cli(redis_url: str, argv: list[str]) -> list[str]:
    """Run a documented command against the test server; its reply, one line per element."""
    assert argv[0] == "redis-cli"
    process = await asyncio.create_subprocess_exec(
        "redis-cli",
        "-u",
        redis_url,
        *argv[1:],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    reply = stdout.decode().splitlines()
    assert process.returncode == 0 and not (reply and reply[0].startswith("ERR")), (reply, stderr)
    return reply


async def clustered(redis: Redis, keys: Keys, item_id: str) -> bool:
    return bool(await redis.hget(keys.feedback(item_id), "clustered") == "true")


async def run_pipeline_until(redis: Redis, settings: Settings, item_id: str) -> None:
    """The real ingest worker and clusterer, until the item is clustered."""
    keys = Keys()
    consumers = [
        build_ingest_consumer(settings, redis, keys),
        build_clusterer_consumer(settings, redis, keys),
    ]
    await run_consumers(consumers, lambda: clustered(redis, keys, item_id))


async def test_an_event_published_with_raw_xadd_is_stored_clustered_and_seen_by_a_group_of_ones_own(
    redis: Redis, redis_url: str, settings: Settings
) -> None:
    keys = Keys()
    assert await redis_cli(redis_url, documented("redis-cli XGROUP CREATE stream:feedback:new")) == ["OK"]

    [event_id] = await redis_cli(redis_url, documented("redis-cli XADD stream:ingest"))
    item_id = item_id_for("manual", None, event_id)
    await run_pipeline_until(redis, settings, item_id)

    assert await read_outcome(redis, keys, event_id) == {
        "status": "created",
        "feedback_id": item_id,
        "reason": "",
    }
    item = await redis.hgetall(keys.feedback(item_id))
    assert item["source"] == "manual"
    assert item["title"] == "CSV export hangs"
    assert item["body"] == "Exporting a report to CSV hangs at 99%"
    assert await redis.sismember(keys.cluster_items(item["cluster_id"]), item_id)
    assert not await redis.sismember(keys.unclustered, item_id)

    stream, entry_id, *fields = await redis_cli(
        redis_url, documented("redis-cli XREADGROUP GROUP my-service")
    )
    assert stream == keys.new_item_stream
    announced = dict(zip(fields[::2], fields[1::2], strict=True))
    assert announced[NewItemField.ID] == item_id
    assert announced[NewItemField.EVENT_ID] == event_id
    *ack, _example_id = documented("redis-cli XACK stream:feedback:new my-service")
    assert await redis_cli(redis_url, [*ack, entry_id]) == ["1"]
    assert (await redis.xpending(keys.new_item_stream, "my-service"))["pending"] == 0
