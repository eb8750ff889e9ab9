"""The real ingest API (uvicorn on a free port) and ingest worker, for end-to-end tests of producers.

Both run on their own event loop in a background thread, so a test may drive them with sync or
async clients alike. The API can be stopped and started again on the same port to play an outage.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field

import redis
import uvicorn

from services.dev.local_redis import free_port
from shared.keys import INGEST_GROUP, Keys
from shared.settings import Settings

GRACEFUL_STOP_SECONDS = 3


@dataclass
class Pipeline:
    settings: Settings
    port: int = field(default_factory=free_port)
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    _thread: threading.Thread | None = None
    _server: uvicorn.Server | None = None
    _serving: Future[None] | None = None
    _worker_stop: asyncio.Event | None = None
    _worker_task: asyncio.Future[None] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, api: bool = True) -> Pipeline:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self._start_worker())
        if api:
            self.start_api()
        return self

    def start_api(self) -> None:
        from services.api.app import create_app

        config = uvicorn.Config(
            create_app(self.settings), host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._serving = asyncio.run_coroutine_threadsafe(self._server.serve(), self._loop)
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "API did not start"
            time.sleep(0.02)

    def stop_api(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        if self._serving is not None:
            try:
                self._serving.result(GRACEFUL_STOP_SECONDS)
            except FutureTimeout:
                self._server.force_exit = True  # an open long-poll would hold a graceful stop
                self._serving.result(10)
        self._server = None

    def stop(self) -> None:
        self.stop_api()
        if self._worker_stop is not None:
            self._loop.call_soon_threadsafe(self._worker_stop.set)
            time.sleep(0.3)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def wait_until_ingested(self, timeout: float = 15.0) -> None:
        """Block until the ingest group has read and acked every entry in `stream:ingest`."""
        wait_until_group_drained(
            self.settings, Keys(self.settings.key_prefix).ingest_stream, INGEST_GROUP, timeout
        )

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _start_worker(self) -> None:
        from services.ingest.worker import build_ingest_consumer
        from shared.redis_connection import connect

        client = connect(self.settings)
        consumer = build_ingest_consumer(self.settings, client, Keys(self.settings.key_prefix))
        await consumer.ensure_group()
        self._worker_stop = asyncio.Event()
        stop = self._worker_stop

        async def run() -> None:
            task = asyncio.create_task(consumer.run())
            await stop.wait()
            consumer.stop()
            await task
            await client.aclose()

        self._worker_task = asyncio.ensure_future(run())


def wait_until_group_drained(settings: Settings, stream: str, group: str, timeout: float = 15.0) -> None:
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    deadline = time.monotonic() + timeout
    try:
        while True:
            groups = {g["name"]: g for g in client.xinfo_groups(stream)} if client.exists(stream) else {}
            state = groups.get(group)
            if state and state["lag"] == 0 and state["pending"] == 0:
                return
            assert time.monotonic() < deadline, f"{stream}/{group} not drained: {state}"
            time.sleep(0.05)
    finally:
        client.close()


@contextmanager
def running_pipeline(settings: Settings, api: bool = True) -> Iterator[Pipeline]:
    """`with running_pipeline(settings) as pipeline:` then point producers at `pipeline.api_url`."""
    pipeline = Pipeline(settings).start(api=api)
    try:
        yield pipeline
    finally:
        pipeline.stop()
