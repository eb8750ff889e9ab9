"""A periodic loop (a producer, the janitor) as a process: a heartbeat, health and metrics on
`HEALTH_PORT`, and a clean stop on SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Coroutine
from typing import Any

from shared.health_server import start_health_server
from shared.settings import Settings


class LoopHeartbeat:
    """When the loop last made progress: the liveness probe fails if a round or a wait wedges."""

    def __init__(self) -> None:
        self.last_beat = time.monotonic()

    def beat(self) -> None:
        self.last_beat = time.monotonic()


async def run_until_signalled(
    loop: Coroutine[Any, Any, None], settings: Settings, heartbeat: LoopHeartbeat, stale_after_seconds: float
) -> None:
    """The loop is cancelled on SIGTERM or SIGINT; its rounds must be safe to stop anywhere."""
    try:
        health = await start_health_server(settings, lambda: heartbeat.last_beat, stale_after_seconds)
    except BaseException:
        loop.close()  # never started: closed, so it is not reported as a coroutine never awaited
        raise
    task = asyncio.ensure_future(loop)
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, task.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    finally:
        await health.close()
