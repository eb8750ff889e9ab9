"""An ingest worker process that dies between its write and its ack, for the SIGKILL tests.

Run as `python -m tests.support.ingest_write_then_hang` with the worker's environment: it reads one
batch from each owned partition's stream as the group's consumer, writes its effects with the real
handler, prints `written` and waits, its entries still pending, for the test to SIGKILL it.
"""

from __future__ import annotations

import asyncio

from services.ingest.worker import build_ingest_consumer
from shared.consumer import StreamMessage
from shared.keys import INGEST_GROUP
from shared.redis_connection import connect
from shared.settings import get_settings

WRITTEN = "written"


async def write_then_hang() -> None:
    settings = get_settings()
    redis = connect(settings)
    keys = settings.keys()
    for partition in settings.owned_partitions:
        view = keys.partition(partition)
        consumer = build_ingest_consumer(settings, redis, view)
        await consumer.ensure_group()
        streams = {view.ingest_stream: ">"}
        for _, entries in await redis.xreadgroup(INGEST_GROUP, settings.consumer_name, streams, count=1000):
            failures = await consumer._handler(
                [StreamMessage(entry_id, fields) for entry_id, fields in entries]
            )
            if failures:
                raise SystemExit(f"the doomed worker failed to write: {failures}")
    print(WRITTEN, flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(write_then_hang())
