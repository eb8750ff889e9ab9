"""The consumer loop every worker runs; its contract is stated once, in `shared.consumer`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared import metrics
from shared.consumer.config import ConsumerConfig
from shared.consumer.dead_letter import DeadLetterer, describe
from shared.consumer.message import BatchHandler, Failures, InvalidPayload, PermanentError, StreamMessage
from shared.consumer.reclaimer import Reclaimer

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL_SECONDS = 1.0
ERROR_PAUSE_SECONDS = 1.0


async def ensure_group(redis: Redis, stream: str, group: str) -> None:
    """Create the group at the stream's start if missing, so a new group sees retained history."""
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class StreamConsumer:
    def __init__(self, redis: Redis, config: ConsumerConfig, handler: BatchHandler) -> None:
        self._redis = redis
        self._config = config
        self._handler = handler
        self._reclaimer = Reclaimer(redis, config)
        self._dead_letterer = DeadLetterer(redis, config)
        self._stopping = asyncio.Event()
        self._recent_dead: deque[float] = deque()
        self._paused = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self._prefetch: asyncio.Task[list[StreamMessage]] | None = None
        self._next_housekeeping = 0.0
        self._next_reclaim = 0.0
        # True until this consumer's own pending entries were read again after a start or a lost
        # connection: a batch cut off half-way must not wait a visibility timeout for its retry.
        self._own_pending_unsettled = True
        self.last_beat = time.monotonic()
        self._labels = {"stream": config.stream, "group": config.group}

    @property
    def config(self) -> ConsumerConfig:
        return self._config

    def stop(self) -> None:
        """Ask the loop to finish the batch in hand, ack it and return."""
        self._stopping.set()

    async def ensure_group(self) -> None:
        await ensure_group(self._redis, self._config.stream, self._config.group)

    async def run(self) -> None:
        await self.ensure_group()
        log.info(
            "consumer started",
            extra={
                "stream": self._config.stream,
                "group": self._config.group,
                "consumer": self._config.consumer,
            },
        )
        while not self._stopping.is_set():
            try:
                await self._step()
            except ResponseError as exc:
                if not group_vanished(exc):
                    raise
                log.warning("stream or group vanished; recreating it", extra=self._labels)
                await self.ensure_group()
            except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
                log.warning("redis unavailable: %s", exc, extra=self._labels)
                self._own_pending_unsettled = True
                await self._pause(ERROR_PAUSE_SECONDS)
        await self._finish_in_flight()
        log.info("consumer stopped", extra={**self._labels, "consumer": self._config.consumer})

    async def _step(self) -> None:
        self.last_beat = time.monotonic()
        await self._housekeeping()
        if self._paused:
            await self._pause(self._config.read.block_ms / 1000)
            return
        if self._own_pending_unsettled:
            await self._reread_own_pending()
        if time.monotonic() >= self._next_reclaim:
            self._next_reclaim = time.monotonic() + self._config.retry.reclaim_interval_ms / 1000
            await self._reclaim()
        messages = await self._next_batch()
        if messages:
            if self._config.read.max_in_flight > 1:
                self._prefetch = asyncio.create_task(self._read_new())
            await self._submit(messages)

    async def _next_batch(self) -> list[StreamMessage]:
        """The batch read ahead, if any, else a fresh read.

        Reading ahead matters because Redis serves one command at a time: a read sent after a
        batch's write script would wait for it, while a read sent before the batch is handled is
        answered while the client is still normalizing, so client and server work overlap."""
        prefetch, self._prefetch = self._prefetch, None
        return await prefetch if prefetch is not None else await self._read_new()

    async def _submit(self, messages: Sequence[StreamMessage]) -> None:
        """Handle a batch; with `max_in_flight` > 1 the next read and normalization overlap this
        batch's round trips. Batches are still written in read order: a handler runs without
        yielding until it sends its writes, so each batch's writes go out before the next one's."""
        task = asyncio.create_task(self._handle(messages))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)
        if len(self._in_flight) >= self._config.read.max_in_flight:
            done, _ = await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)
            for finished in done:
                finished.result()

    async def _finish_in_flight(self) -> None:
        """Entries already delivered to this consumer are handled before it exits, not left pending."""
        if self._prefetch is not None:
            messages = await self._next_batch()
            if messages:
                await self._submit(messages)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _housekeeping(self) -> None:
        """Once a second: publish a heartbeat, learn whether the group is paused, sample the backlog."""
        now = time.monotonic()
        if now < self._next_housekeeping:
            return
        self._next_housekeeping = now + HOUSEKEEPING_INTERVAL_SECONDS
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._config.keys.heartbeat, datetime.now(UTC).isoformat(), ex=30)
            pipe.xpending(self._config.stream, self._config.group)
            pipe.exists(self._config.keys.paused)
            pipe.xlen(self._config.stream)
            pipe.xinfo_groups(self._config.stream)
            replies = await pipe.execute(raise_on_error=False)
        if not isinstance(replies[-1], Exception):
            self._record_backlog(replies[-2], replies[-1])
        if not isinstance(replies[-4], Exception):
            self._record_oldest_pending(replies[-4])
        paused = bool(replies[-3])
        metrics.group_paused.labels(**self._labels).set(int(paused))
        if paused != self._paused:
            log.warning("group %s", "paused" if paused else "resumed", extra=self._labels)
        self._paused = paused

    def _record_backlog(self, length: int, groups: list[dict[str, Any]]) -> None:
        """Lag and pending as gauges, so every worker's scrape shows its group's backlog."""
        metrics.stream_length.labels(stream=self._config.stream).set(length)
        for group in groups:
            if group["name"] != self._config.group:
                continue
            metrics.group_pending.labels(**self._labels).set(int(group["pending"]))
            if group.get("lag") is not None:
                metrics.group_lag.labels(**self._labels).set(int(group["lag"]))

    def _record_oldest_pending(self, summary: dict[str, Any]) -> None:
        """Age since the append (the entry id's timestamp), by this host's clock: close enough for an
        alert counted in minutes, and no extra round trip for the server's time."""
        oldest = summary.get("min")
        age_ms = time.time() * 1000 - int(str(oldest).split("-", 1)[0]) if oldest else 0
        metrics.group_oldest_pending_age.labels(**self._labels).set(max(age_ms, 0) / 1000)

    async def _read_new(self) -> list[StreamMessage]:
        reply = await self._redis.xreadgroup(
            self._config.group,
            self._config.consumer,
            {self._config.stream: ">"},
            count=self._config.read.batch_size,
            block=self._config.read.block_ms,
        )
        return await self._messages(reply[0][1], deliveries=1) if reply else []

    async def _reread_own_pending(self) -> None:
        """Handle again, now, every entry this consumer holds unacked: after a start, its name's work
        from before; after a lost connection, batches cut off half-way. Batches still in hand finish
        first, and a read-ahead is dropped, since its entries are pending here too."""
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self._prefetch is not None:
            prefetch, self._prefetch = self._prefetch, None
            with contextlib.suppress(Exception):
                await prefetch
        self._own_pending_unsettled = False
        await self._drain_own_pending()

    async def _drain_own_pending(self) -> None:
        """Read this consumer's pending entries from the start (`XREADGROUP ... 0`), batch by batch.

        Each re-read counts as a delivery, so an entry that keeps failing this way (a worker that
        crashes on it, a script that times out) is still dead-lettered past `max_deliveries`."""
        cursor = "0"
        while not self._stopping.is_set():
            reply = await self._redis.xreadgroup(
                self._config.group,
                self._config.consumer,
                {self._config.stream: cursor},
                count=self._config.read.batch_size,
            )
            entries = reply[0][1] if reply else []
            if not entries:
                return
            cursor = entries[-1][0]
            self.last_beat = time.monotonic()
            deliveries = await self._reclaimer.own_deliveries(entries[0][0], cursor, len(entries))
            messages = [
                replace(m, deliveries=deliveries.get(m.id, 0)) for m in await self._messages(entries, 0)
            ]
            max_deliveries = self._config.retry.max_deliveries
            exhausted = [
                replace(m, deliveries=m.deliveries - 1) for m in messages if m.deliveries > max_deliveries
            ]
            if exhausted:
                await self._bury_exhausted(exhausted)
            retry = [m for m in messages if m.deliveries <= max_deliveries]
            if retry:
                await self._handle(retry)

    async def _messages(
        self, entries: list[tuple[str, dict[str, str] | None]], deliveries: int
    ) -> list[StreamMessage]:
        """Entries trimmed away while pending come back with no fields (Redis never stores an empty
        entry): ack them, nothing is left to do."""
        deleted = [entry_id for entry_id, fields in entries if not fields]
        if deleted:
            await self._redis.xack(self._config.stream, self._config.group, *deleted)
        return [StreamMessage(entry_id, fields, deliveries) for entry_id, fields in entries if fields]

    async def _reclaim(self) -> None:
        reclaimed = await self._reclaimer.reclaim()
        if reclaimed.exhausted:
            await self._bury_exhausted(reclaimed.exhausted)
        if reclaimed.retry:
            metrics.reclaimed_total.labels(**self._labels).inc(len(reclaimed.retry))
            await self._handle(reclaimed.retry)

    async def _bury_exhausted(self, messages: Sequence[StreamMessage]) -> None:
        last_errors = await self._redis.hmget(self._config.keys.errors, [m.id for m in messages])
        dead = [
            (m, f"gave up after {m.deliveries} deliveries; last error: {error or 'none recorded'}")
            for m, error in zip(messages, last_errors, strict=True)
        ]
        await self._dead_letter(dead, breaker_count=len(dead))

    async def _handle(self, messages: Sequence[StreamMessage]) -> None:
        started = time.perf_counter()
        try:
            failures: Failures = await self._handler(messages)
        except Exception as exc:
            log.exception("handler failed for a whole batch", extra=self._labels)
            failures = {m.id: exc for m in messages}
        metrics.handler_seconds.labels(**self._labels).observe(time.perf_counter() - started)
        if any(lost_redis(error) for error in failures.values()):
            self._own_pending_unsettled = True
        done = [m for m in messages if m.id not in failures]
        bad_data: list[tuple[StreamMessage, str]] = []
        broken: list[tuple[StreamMessage, str]] = []
        transient: dict[str, str] = {}
        for message in messages:
            error = failures.get(message.id)
            if isinstance(error, InvalidPayload):
                bad_data.append((message, describe(error)))
            elif isinstance(error, PermanentError):
                broken.append((message, describe(error)))
            elif error is not None:
                transient[message.id] = describe(error)
        await self._settle(done, transient)
        await self._dead_letter(bad_data + broken, breaker_count=len(broken))

    async def _settle(self, done: Sequence[StreamMessage], transient: dict[str, str]) -> None:
        """Ack what succeeded and remember why the rest failed, in one round trip."""
        if not done and not transient:
            return
        acked = [m.id for m in done]
        # Only an entry delivered before (or of unknown history) can have an error on record.
        retried = [m.id for m in done if m.deliveries != 1]
        if not retried and not transient:
            # The usual batch: a lone XACK needs no MULTI/EXEC around it.
            await self._redis.xack(self._config.stream, self._config.group, *acked)
        else:
            async with self._redis.pipeline(transaction=True) as pipe:
                if acked:
                    pipe.xack(self._config.stream, self._config.group, *acked)
                if retried:
                    pipe.hdel(self._config.keys.errors, *retried)
                if transient:
                    pipe.hset(self._config.keys.errors, mapping=transient)
                await pipe.execute()
        now_ms = time.time() * 1000
        e2e = metrics.end_to_end_seconds.labels(**self._labels)
        for message in done:
            e2e.observe(max(now_ms - message.timestamp_ms, 0) / 1000)
        metrics.messages_total.labels(**self._labels, outcome="ok").inc(len(done))
        if transient:
            metrics.messages_total.labels(**self._labels, outcome="retry").inc(len(transient))
            log.warning(
                "%d entries failed and stay pending for retry",
                len(transient),
                extra={**self._labels, "first_error": next(iter(transient.values()))},
            )

    async def _dead_letter(self, dead: Sequence[tuple[StreamMessage, str]], breaker_count: int) -> None:
        """Bury entries; `breaker_count` of them (those not buried for their own bad data) count
        toward the circuit breaker."""
        if not dead:
            return
        await self._dead_letterer.bury(dead)
        metrics.dead_letters_total.labels(**self._labels).inc(len(dead))
        metrics.messages_total.labels(**self._labels, outcome="dead_letter").inc(len(dead))
        for message, reason in dead:
            log.error("dead-lettered", extra={**self._labels, "event_id": message.id, "reason": reason})
        if breaker_count:
            await self._check_breaker(breaker_count)

    async def _check_breaker(self, count: int) -> None:
        """Pause the group when counted dead letters pass the configured rate: a bad deploy must stop
        the group rather than drain the stream into the dead-letter stream."""
        breaker = self._config.breaker
        now = time.monotonic()
        self._recent_dead.extend([now] * count)
        while self._recent_dead and self._recent_dead[0] < now - breaker.window_seconds:
            self._recent_dead.popleft()
        if len(self._recent_dead) > breaker.max_dead_letters:
            reason = (
                f"{len(self._recent_dead)} dead letters within {breaker.window_seconds:g}s "
                f"(limit {breaker.max_dead_letters}) at {datetime.now(UTC).isoformat()}"
            )
            await self._redis.set(self._config.keys.paused, reason)
            self._paused = True
            log.error("circuit breaker open: group paused", extra={**self._labels, "reason": reason})


def lost_redis(error: Exception) -> bool:
    """The failure was Redis going away (a restart, a dropped connection), not the entry or the handler."""
    return isinstance(error, RedisConnectionError | RedisTimeoutError)


def group_vanished(error: ResponseError) -> bool:
    """The stream or its group was deleted (evicted, flushed, an operator's DEL): NOGROUP on a read,
    UNBLOCKED for a read that was blocked when it went. Recreating the group resumes consumption."""
    text = str(error)
    return text.startswith("NOGROUP") or text.startswith("UNBLOCKED")


async def run_until_stopped(consumers: Sequence[StreamConsumer]) -> None:
    """Run consumers (one per partition stream a process reads) as its main job: SIGTERM or SIGINT
    end them all gracefully, and one that fails stops the others, so the process exits and restarts
    whole instead of living on with a partition unread."""

    def stop_all() -> None:
        for consumer in consumers:
            consumer.stop()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_all)
    async with asyncio.TaskGroup() as running:
        for consumer in consumers:
            running.create_task(consumer.run())
