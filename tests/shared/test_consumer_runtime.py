"""The consumer runtime against a real Redis: ack, retry with backoff, reclaim, dead letters, shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import pytest
from redis.asyncio import Redis

from shared.consumer import (
    BreakerPolicy,
    BurialRecord,
    ConsumerConfig,
    DeadLetterPolicy,
    Failures,
    GroupKeys,
    InvalidPayload,
    PermanentError,
    ReadPolicy,
    RetryPolicy,
    StreamConsumer,
    StreamMessage,
)
from tests.support.waiting import eventually

STREAM = "test:stream"
GROUP = "workers"
FAST_RETRY = RetryPolicy(
    visibility_timeout_ms=100, max_backoff_ms=400, max_deliveries=3, reclaim_interval_ms=50
)
FAST_READ = ReadPolicy(batch_size=10, block_ms=50)
DEFAULT_BREAKER = BreakerPolicy()
LONG_VISIBILITY = replace(FAST_RETRY, visibility_timeout_ms=60_000)


def make_config(
    consumer: str = "c1",
    *,
    read: ReadPolicy = FAST_READ,
    retry: RetryPolicy = FAST_RETRY,
    breaker: BreakerPolicy = DEFAULT_BREAKER,
) -> ConsumerConfig:
    return ConsumerConfig(
        stream=STREAM,
        group=GROUP,
        consumer=consumer,
        keys=GroupKeys(
            errors=f"{STREAM}:errors:{GROUP}",
            paused=f"{STREAM}:paused:{GROUP}",
            heartbeat=f"{STREAM}:heartbeat:{GROUP}:{consumer}",
        ),
        dead_letter=DeadLetterPolicy(f"{STREAM}:dlq"),
        read=read,
        retry=retry,
        breaker=breaker,
    )


class Recorder:
    """A handler that records what it saw and fails on demand."""

    def __init__(self, fail: Callable[[StreamMessage], Exception | None] = lambda m: None) -> None:
        self.seen: list[str] = []
        self.fail = fail

    async def __call__(self, messages: Sequence[StreamMessage]) -> Failures:
        failures: dict[str, Exception] = {}
        for message in messages:
            self.seen.append(message.fields["n"])
            if (error := self.fail(message)) is not None:
                failures[message.id] = error
        return failures


async def run_until(
    consumer: StreamConsumer, done: Callable[[], Awaitable[bool]], timeout: float = 5.0
) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        deadline = time.monotonic() + timeout
        while not await done():
            assert time.monotonic() < deadline, "condition not reached in time"
            assert not task.done(), f"consumer exited early: {task.exception() if task.done() else ''}"
            await asyncio.sleep(0.02)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=5)


async def blocked_in_xreadgroup(redis: Redis) -> bool:
    clients = await redis.client_list()
    return any(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in clients)


async def group_exists(redis: Redis) -> bool:
    if not await redis.exists(STREAM):
        return False
    return any(g["name"] == GROUP for g in await redis.xinfo_groups(STREAM))


async def add(redis: Redis, count: int) -> list[str]:
    return [await redis.xadd(STREAM, {"n": str(i)}) for i in range(count)]


async def pending_count(redis: Redis) -> int:
    summary = await redis.xpending(STREAM, GROUP)
    return int(summary["pending"])


async def test_acks_every_entry_after_handling(redis: Redis) -> None:
    await add(redis, 25)
    handler = Recorder()
    consumer = StreamConsumer(redis, make_config(), handler)

    async def all_seen() -> bool:
        return len(handler.seen) == 25

    await run_until(consumer, all_seen)
    assert sorted(handler.seen, key=int) == [str(i) for i in range(25)]
    assert await pending_count(redis) == 0
    assert await redis.xlen(f"{STREAM}:dlq") == 0


async def test_transient_failure_is_retried_after_backoff(redis: Redis) -> None:
    await add(redis, 3)
    attempts: dict[str, int] = {}

    def fail_first_try(message: StreamMessage) -> Exception | None:
        attempts[message.id] = attempts.get(message.id, 0) + 1
        return (
            ConnectionError("embedder down")
            if message.fields["n"] == "1" and attempts[message.id] == 1
            else None
        )

    handler = Recorder(fail_first_try)
    consumer = StreamConsumer(redis, make_config(), handler)

    async def retried() -> bool:
        return handler.seen.count("1") == 2 and await pending_count(redis) == 0

    started = time.monotonic()
    await run_until(consumer, retried)
    assert time.monotonic() - started >= 0.1, "retry must wait for the visibility timeout"
    assert handler.seen.count("0") == 1
    assert await redis.hlen(f"{STREAM}:errors:{GROUP}") == 0


async def test_permanent_error_goes_to_dead_letters_at_once_with_reason(redis: Redis) -> None:
    ids = await add(redis, 3)

    def reject_two(message: StreamMessage) -> Exception | None:
        return PermanentError("payload is not JSON") if message.fields["n"] == "2" else None

    handler = Recorder(reject_two)
    consumer = StreamConsumer(redis, make_config(), handler)

    async def buried() -> bool:
        return await redis.xlen(f"{STREAM}:dlq") == 1

    await run_until(consumer, buried)
    [(_, dead)] = await redis.xrange(f"{STREAM}:dlq")
    assert dead["n"] == "2"
    assert dead["original_id"] == ids[2]
    assert dead["group"] == GROUP
    assert "payload is not JSON" in dead["error"]
    assert handler.seen.count("2") == 1
    assert await pending_count(redis) == 0


async def test_entry_that_keeps_failing_is_dead_lettered_after_max_deliveries(redis: Redis) -> None:
    await add(redis, 1)
    handler = Recorder(lambda m: TimeoutError("vector index timed out"))
    consumer = StreamConsumer(redis, make_config(), handler)

    async def buried() -> bool:
        return await redis.xlen(f"{STREAM}:dlq") == 1

    await run_until(consumer, buried)
    [(_, dead)] = await redis.xrange(f"{STREAM}:dlq")
    assert dead["deliveries"] == "3"
    assert "gave up after 3 deliveries" in dead["error"]
    assert "vector index timed out" in dead["error"]
    assert len(handler.seen) == 3
    assert await pending_count(redis) == 0


async def test_entries_left_by_a_dead_consumer_are_reclaimed_by_another(redis: Redis) -> None:
    await add(redis, 4)
    await redis.xgroup_create(STREAM, GROUP, id="0")
    await redis.xreadgroup(GROUP, "crashed-pod", {STREAM: ">"}, count=4)
    assert await pending_count(redis) == 4

    handler = Recorder()
    survivor = StreamConsumer(redis, make_config("survivor"), handler)

    async def all_done() -> bool:
        return await pending_count(redis) == 0

    await run_until(survivor, all_done)
    assert sorted(handler.seen) == ["0", "1", "2", "3"]


async def test_restarted_consumer_drains_its_own_pending_first(redis: Redis) -> None:
    await add(redis, 2)
    await redis.xgroup_create(STREAM, GROUP, id="0")
    await redis.xreadgroup(GROUP, "stable-name", {STREAM: ">"}, count=2)
    # A long visibility timeout: only the drain-own-pending path can pick these up in time.
    handler = Recorder()
    consumer = StreamConsumer(redis, make_config("stable-name", retry=LONG_VISIBILITY), handler)

    async def drained() -> bool:
        return await pending_count(redis) == 0

    await run_until(consumer, drained, timeout=2)
    assert handler.seen == ["0", "1"]


async def test_entry_trimmed_while_pending_is_acked_and_skipped(redis: Redis) -> None:
    ids = await add(redis, 2)
    await redis.xgroup_create(STREAM, GROUP, id="0")
    await redis.xreadgroup(GROUP, "stable-name", {STREAM: ">"}, count=2)
    await redis.xdel(STREAM, ids[0])
    handler = Recorder()
    consumer = StreamConsumer(redis, make_config("stable-name", retry=LONG_VISIBILITY), handler)

    async def drained() -> bool:
        return await pending_count(redis) == 0

    await run_until(consumer, drained, timeout=2)
    assert handler.seen == ["1"]


async def test_whole_batch_failure_leaves_everything_pending_then_recovers(redis: Redis) -> None:
    await add(redis, 5)
    calls = 0

    async def flaky(messages: Sequence[StreamMessage]) -> Failures:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("lost connection to the embedder")
        return {}

    consumer = StreamConsumer(redis, make_config(), flaky)

    async def recovered() -> bool:
        return calls >= 2 and await pending_count(redis) == 0

    await run_until(consumer, recovered)
    assert await redis.xlen(f"{STREAM}:dlq") == 0


async def test_circuit_breaker_pauses_group_instead_of_draining_into_dead_letters(redis: Redis) -> None:
    await add(redis, 30)
    handler = Recorder(lambda m: PermanentError("bad deploy: every entry fails"))
    config = make_config(
        breaker=BreakerPolicy(max_dead_letters=5), read=ReadPolicy(batch_size=4, block_ms=50)
    )
    consumer = StreamConsumer(redis, config, handler)

    async def paused() -> bool:
        return bool(await redis.exists(config.keys.paused))

    await run_until(consumer, paused)
    await asyncio.sleep(0.2)  # time passes on purpose: a paused group must stay paused, burying nothing more
    dead = await redis.xlen(f"{STREAM}:dlq")
    assert 5 < dead < 30, "the breaker must stop the group long before the stream is drained"
    assert "dead letters within" in await redis.get(config.keys.paused)


async def test_bad_data_alone_never_trips_the_breaker(redis: Redis) -> None:
    await add(redis, 150)
    handler = Recorder(lambda m: InvalidPayload("created_utc out of range"))
    config = make_config(read=ReadPolicy(batch_size=50, block_ms=50))
    consumer = StreamConsumer(redis, config, handler)

    async def all_buried() -> bool:
        return await redis.xlen(f"{STREAM}:dlq") == 150

    await run_until(consumer, all_buried)
    assert config.breaker.max_dead_letters < 150
    assert not await redis.exists(config.keys.paused), "bad data is not a bad deploy"
    assert await pending_count(redis) == 0


async def test_transient_failures_past_max_deliveries_still_trip_the_breaker(redis: Redis) -> None:
    await add(redis, 10)
    handler = Recorder(lambda m: TimeoutError("embedder times out after the deploy"))
    config = make_config(breaker=BreakerPolicy(max_dead_letters=5))
    consumer = StreamConsumer(redis, config, handler)

    async def paused() -> bool:
        return bool(await redis.exists(config.keys.paused))

    await run_until(consumer, paused)
    [(_, dead), *_] = await redis.xrange(f"{STREAM}:dlq")
    assert "gave up after 3 deliveries" in dead["error"]


async def test_burial_record_is_written_with_the_dead_letter(redis: Redis) -> None:
    ids = await add(redis, 3)
    record = BurialRecord(
        lua="redis.call('HSET', keys[1], id, args[1] .. dead_id .. ' ' .. err)",
        keys_for=lambda entry_id: [f"{STREAM}:buried"],
        args=["buried as "],
    )
    config = replace(make_config(), dead_letter=DeadLetterPolicy(f"{STREAM}:dlq", record))
    handler = Recorder(lambda m: InvalidPayload("not JSON") if m.fields["n"] != "1" else None)
    consumer = StreamConsumer(redis, config, handler)

    async def buried() -> bool:
        return await redis.xlen(f"{STREAM}:dlq") == 2

    await run_until(consumer, buried)
    dead_ids = {fields["original_id"]: dead_id for dead_id, fields in await redis.xrange(f"{STREAM}:dlq")}
    assert await redis.hgetall(f"{STREAM}:buried") == {
        ids[0]: f"buried as {dead_ids[ids[0]]} InvalidPayload: not JSON",
        ids[2]: f"buried as {dead_ids[ids[2]]} InvalidPayload: not JSON",
    }


async def test_own_pending_redelivered_past_max_deliveries_is_buried_not_handled(redis: Redis) -> None:
    """A consumer that crashes on an entry each time it starts must not crash-loop on it forever."""
    await add(redis, 2)
    await redis.xgroup_create(STREAM, GROUP, id="0")
    await redis.xreadgroup(GROUP, "stable-name", {STREAM: ">"}, count=2)
    await redis.xack(STREAM, GROUP, (await redis.xrange(STREAM))[1][0])
    for _ in range(2):  # two earlier lives of this consumer read it again and died
        await redis.xreadgroup(GROUP, "stable-name", {STREAM: "0"}, count=2)
    handler = Recorder()
    consumer = StreamConsumer(redis, make_config("stable-name", retry=LONG_VISIBILITY), handler)

    async def buried() -> bool:
        return await redis.xlen(f"{STREAM}:dlq") == 1

    await run_until(consumer, buried)
    [(_, dead)] = await redis.xrange(f"{STREAM}:dlq")
    assert (dead["n"], dead["deliveries"]) == ("0", "3")
    assert handler.seen == []
    assert await pending_count(redis) == 0


async def test_stop_finishes_and_acks_the_batch_in_hand(redis: Redis) -> None:
    await add(redis, 5)
    in_hand, release = asyncio.Event(), asyncio.Event()
    consumer: StreamConsumer

    async def slow(messages: Sequence[StreamMessage]) -> Failures:
        consumer.stop()
        in_hand.set()
        await release.wait()
        return {}

    consumer = StreamConsumer(redis, make_config(), slow)
    task = asyncio.create_task(consumer.run())
    await asyncio.wait_for(in_hand.wait(), 5)
    await asyncio.sleep(0.2)  # time passes on purpose: a consumer that dropped its batch would exit now
    assert not task.done(), "must not exit while a batch is in hand"
    release.set()
    await asyncio.wait_for(task, timeout=2)
    assert await pending_count(redis) == 0


@pytest.mark.parametrize("deliveries, expected", [(1, 100), (2, 200), (3, 400), (9, 400)])
def test_backoff_doubles_per_delivery_up_to_the_cap(deliveries: int, expected: int) -> None:
    assert FAST_RETRY.backoff_ms(deliveries) == expected


async def test_backlog_gauges_and_heartbeat_are_published(redis: Redis) -> None:
    from prometheus_client import REGISTRY

    await add(redis, 12)
    config = make_config(read=ReadPolicy(batch_size=5, block_ms=50))
    handler = Recorder()
    consumer = StreamConsumer(redis, config, handler)

    async def heartbeat_seen() -> bool:
        return len(handler.seen) == 12 and bool(await redis.exists(config.keys.heartbeat))

    await run_until(consumer, heartbeat_seen)
    length = REGISTRY.get_sample_value("soulcaster_stream_length", {"stream": STREAM})
    assert length == 12
    pending = REGISTRY.get_sample_value("soulcaster_stream_group_pending", {"stream": STREAM, "group": GROUP})
    assert pending is not None and pending >= 0


async def test_consumer_recreates_its_group_when_the_stream_is_deleted(redis: Redis) -> None:
    await add(redis, 2)
    handler = Recorder()
    consumer = StreamConsumer(redis, make_config(read=ReadPolicy(batch_size=10, block_ms=500)), handler)

    task = asyncio.create_task(consumer.run())
    try:
        deadline = time.monotonic() + 5
        while len(handler.seen) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await eventually(lambda: blocked_in_xreadgroup(redis), "the consumer blocked in XREADGROUP", 5)
        await redis.delete(STREAM)
        await eventually(lambda: group_exists(redis), "the group recreated", 5)
        await redis.xadd(STREAM, {"n": "after"})
        deadline = time.monotonic() + 5
        while "after" not in handler.seen:
            assert time.monotonic() < deadline and not task.done(), "consumer did not recover"
            await asyncio.sleep(0.02)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 5)


async def test_two_reclaimers_racing_for_the_same_entries_claim_each_once(redis: Redis) -> None:
    from shared.consumer.reclaimer import Reclaimer

    await add(redis, 30)
    await redis.xgroup_create(STREAM, GROUP, id="0")
    await redis.xreadgroup(GROUP, "crashed-pod", {STREAM: ">"}, count=30)
    await asyncio.sleep(0.15)  # past the visibility timeout
    first, second = await asyncio.gather(
        Reclaimer(redis, make_config("a")).reclaim(), Reclaimer(redis, make_config("b")).reclaim()
    )
    claimed_a = {m.id for m in first.retry}
    claimed_b = {m.id for m in second.retry}
    assert not claimed_a & claimed_b, "an entry must never be claimed by both"
    assert len(claimed_a | claimed_b) == 30
    assert all(m.deliveries == 2 for m in first.retry + second.retry)
