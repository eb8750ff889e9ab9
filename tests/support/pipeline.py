"""The real ingest API (uvicorn on a free port) and ingest worker, for end-to-end tests of producers.

Both run on their own event loop in a background thread, so a test may drive them with sync or
async clients alike. The API can be stopped and started again on the same port to play an outage.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn

from services.dev.local_redis import free_port
from shared.settings import Settings
from tests.support.drained import ingested, run_with_redis
from tests.support.waiting import wait_for

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

        # An open long-poll would hold a graceful stop: after the timeout uvicorn cancels it and still
        # runs the lifespan shutdown (which closes the app's Redis client). `force_exit` would skip
        # that shutdown, leaving the client to be torn down unawaited when the loop is collected.
        config = uvicorn.Config(
            create_app(self.settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=GRACEFUL_STOP_SECONDS,
        )
        self._server = uvicorn.Server(config)
        self._serving = asyncio.run_coroutine_threadsafe(self._server.serve(), self._loop)
        server = self._server
        wait_for(lambda: server.started, "the API to start", 10)

    def stop_api(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        if self._serving is not None:
            self._serving.result(GRACEFUL_STOP_SECONDS + 10)
        self._server = None

    def stop(self) -> None:
        self.stop_api()
        if self._worker_stop is not None:
            self._loop.call_soon_threadsafe(self._worker_stop.set)
            self._call(self._worker_finished())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)

    def wait_until_ingested(self, timeout: float = 15.0) -> None:
        """Block until the ingest group has read and acked every entry in `stream:ingest`."""
        keys, url = self.settings.keys(), self.settings.redis_url
        wait_for(lambda: run_with_redis(url, lambda r: ingested(r, keys)), "everything ingested", timeout)

    def _call(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _worker_finished(self) -> None:
        if self._worker_task is not None:
            await self._worker_task

    async def _start_worker(self) -> None:
        from services.ingest.worker import build_ingest_consumer
        from shared.redis_connection import connect

        client = connect(self.settings)
        keys = self.settings.keys()
        consumers = [
            build_ingest_consumer(self.settings, client, keys.partition(i)) for i in keys.partitioning.all
        ]
        for consumer in consumers:
            await consumer.ensure_group()
        self._worker_stop = asyncio.Event()
        stop = self._worker_stop

        async def run() -> None:
            tasks = [asyncio.create_task(consumer.run()) for consumer in consumers]
            await stop.wait()
            for consumer in consumers:
                consumer.stop()
            await asyncio.gather(*tasks)
            await client.aclose()

        self._worker_task = asyncio.ensure_future(run())


@contextmanager
def running_pipeline(settings: Settings, api: bool = True) -> Iterator[Pipeline]:
    """`with running_pipeline(settings) as pipeline:` then point producers at `pipeline.api_url`."""
    pipeline = Pipeline(settings).start(api=api)
    try:
        yield pipeline
    finally:
        pipeline.stop()
