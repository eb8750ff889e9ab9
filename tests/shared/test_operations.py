"""Operator tools against a real Redis: retention, dead letters, export/import, consumer pruning."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from redis.asyncio import Redis

from shared.operations.consumers import prune_idle_consumers
from shared.operations.dead_letters import DeadLetters
from shared.operations.janitor import Janitor
from shared.operations.stream_export import append_to, export_range, import_lines
from shared.operations.stream_range import to_stream_id

STREAM = "ops:stream"
GROUP = "g"
HOUR_MS = 3_600_000


async def fill(redis: Redis, count: int, start_ms: int = 1_000_000) -> list[str]:
    return [await redis.xadd(STREAM, {"n": str(i)}, id=f"{start_ms + i}-0") for i in range(count)]


async def deliver(redis: Redis, consumer: str, count: int) -> list[str]:
    reply = await redis.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=count)
    return [entry_id for entry_id, _ in reply[0][1]]


async def remaining(redis: Redis) -> list[str]:
    return [entry_id for entry_id, _ in await redis.xrange(STREAM)]


async def test_janitor_keeps_an_unacked_entry_and_drops_acked_ones_around_it(redis: Redis) -> None:
    ids = await fill(redis, 10)
    await redis.xgroup_create(STREAM, GROUP, id="0")
    delivered = await deliver(redis, "c", 8)
    unacked = delivered[4]
    await redis.xack(STREAM, GROUP, *[i for i in delivered if i != unacked])

    report = await Janitor(redis, replay_window_seconds=0).trim(STREAM, now_ms=2_000_000)

    # The unacked entry survives; acked entries before and after it go; undelivered ones stay.
    assert await remaining(redis) == [unacked, ids[8], ids[9]]
    assert report.kept_pending == 1
    assert report.trimmed + report.deleted == 7


async def test_janitor_never_drops_entries_a_group_has_not_read(redis: Redis) -> None:
    ids = await fill(redis, 6)
    await redis.xgroup_create(STREAM, "fast", id="0")
    await redis.xgroup_create(STREAM, "slow", id="0")
    fast = await redis.xreadgroup("fast", "c", {STREAM: ">"}, count=6)
    await redis.xack(STREAM, "fast", *[e for e, _ in fast[0][1]])
    slow = await redis.xreadgroup("slow", "c", {STREAM: ">"}, count=2)
    await redis.xack(STREAM, "slow", *[e for e, _ in slow[0][1]])

    await Janitor(redis, replay_window_seconds=0).trim(STREAM, now_ms=2_000_000)
    assert await remaining(redis) == ids[2:]


async def test_janitor_keeps_the_replay_window(redis: Redis) -> None:
    now_ms = 10 * HOUR_MS
    old = [await redis.xadd(STREAM, {"n": "old"}, id=f"{now_ms - 3 * HOUR_MS + i}-0") for i in range(3)]
    recent = [await redis.xadd(STREAM, {"n": "new"}, id=f"{now_ms - HOUR_MS + i}-0") for i in range(3)]
    await redis.xgroup_create(STREAM, GROUP, id="$")
    assert old

    await Janitor(redis, replay_window_seconds=2 * 3600).trim(STREAM, now_ms=now_ms)
    assert await remaining(redis) == recent


async def test_dead_letters_list_show_redrive_and_purge(redis: Redis) -> None:
    dlq = f"{STREAM}:dlq"
    first = await redis.xadd(
        dlq, {"v": "1", "payload": "{}", "original_id": "1-0", "error": "boom", "group": GROUP}
    )
    second = await redis.xadd(
        dlq, {"v": "1", "payload": "[]", "original_id": "2-0", "error": "bad", "group": GROUP}
    )
    letters = DeadLetters(redis, STREAM, dlq)

    assert [letter.id for letter in await letters.list()] == [first, second]
    shown = await letters.show(first)
    assert shown is not None and shown.error == "boom"

    moved = await letters.redrive([first, "0-1"])
    assert list(moved) == [first]
    [(new_id, fields)] = await redis.xrange(STREAM)
    assert new_id == moved[first]
    assert fields == {"v": "1", "payload": "{}", "redriven_from": first, "redriven_error": "boom"}
    assert await redis.xlen(dlq) == 1
    assert await letters.redrive([first]) == {}, "a dead letter is redriven once"

    assert await letters.purge() == 1
    assert await redis.xlen(dlq) == 0


async def test_export_and_import_round_trip(redis: Redis) -> None:
    ids = await fill(redis, 5)
    out = io.StringIO()
    assert await export_range(redis, STREAM, out, start=ids[1], end=ids[3]) == 3
    lines = out.getvalue().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ids[1:4]

    assert await import_lines(lines, append_to(redis, "ops:other")) == 3
    imported = await redis.xrange("ops:other")
    assert [fields["n"] for _, fields in imported] == ["1", "2", "3"]
    assert [fields["imported_from"] for _, fields in imported] == ids[1:4]


async def test_import_rejects_a_line_that_is_not_an_export(redis: Redis) -> None:
    with pytest.raises(ValueError, match="line 2"):
        await import_lines(['{"id": "1-0", "fields": {"a": "b"}}', "not json"], append_to(redis, STREAM))


def test_stream_ranges_accept_ids_times_and_iso_dates() -> None:
    assert to_stream_id("1700000000000-3") == "1700000000000-3"
    assert to_stream_id("1700000000000") == "1700000000000"
    assert to_stream_id("2023-11-14T22:13:20+00:00") == "1700000000000"
    with pytest.raises(ValueError, match="neither"):
        to_stream_id("yesterday")


async def test_prune_removes_only_idle_consumers_with_nothing_pending(redis: Redis) -> None:
    await fill(redis, 2)
    await redis.xgroup_create(STREAM, GROUP, id="0")
    await deliver(redis, "owns-work", 1)
    await redis.xgroup_createconsumer(STREAM, GROUP, "idle-and-empty")
    await asyncio.sleep(0.05)  # time passes on purpose: both consumers become idle past idle_ms=10

    removed = await prune_idle_consumers(redis, STREAM, GROUP, idle_ms=10)
    assert removed == ["idle-and-empty"]
    names = [c["name"] for c in await redis.xinfo_consumers(STREAM, GROUP)]
    assert names == ["owns-work"]


async def test_stream_infos_reads_many_streams_in_one_go_each_with_its_own_groups(redis: Redis) -> None:
    from shared.stream_info import stream_info, stream_infos

    for stream, count in (("ops:a", 3), ("ops:c", 2)):
        for n in range(count):
            await redis.xadd(stream, {"n": str(n)})
    await redis.xgroup_create("ops:a", "g1", id="0")
    await redis.xgroup_create("ops:a", "g2", id="0")
    await redis.xgroup_create("ops:c", "g3", id="0")
    await redis.xreadgroup("g2", "pod", {"ops:a": ">"}, count=2)
    await redis.xreadgroup("g3", "pod", {"ops:c": ">"}, count=1)
    await redis.xadd("ops:b:dlq", {"error": "x"})

    pairs = [("ops:a", "ops:a:dlq"), ("ops:b", "ops:b:dlq"), ("ops:c", "ops:c:dlq")]
    infos = await stream_infos(redis, pairs)
    assert [(i.stream, i.length, i.dead_letter_length) for i in infos] == [
        ("ops:a", 3, 0),
        ("ops:b", 0, 1),
        ("ops:c", 2, 0),
    ]
    assert [[(g.name, g.pending, g.lag) for g in i.groups] for i in infos] == [
        [("g1", 0, 3), ("g2", 2, 1)],
        [],
        [("g3", 1, 1)],
    ]
    alone = [await stream_info(redis, *pair) for pair in pairs]
    assert [[g.name for g in i.groups] for i in alone] == [["g1", "g2"], [], ["g3"]]
