"""The operator commands on 3 partitions (tagged names, one redis-server): each partition and the total."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from redis.crc import key_slot

from shared.keys import INGEST_GROUP, Keys, NewItemField
from shared.settings import Settings

SOULCASTER = [sys.executable, "-m", "services.cli"]
KEYS = Settings(ingest_partitions=3).keys()
PARTS = KEYS.partitions


def soulcaster(redis_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "REDIS_URL": redis_url, "INGEST_PARTITIONS": "3", **env}
    return subprocess.run(
        [*SOULCASTER, *args], env=environment, capture_output=True, text=True, timeout=60, check=False
    )


def fill(client, counts: tuple[int, ...] = (2, 1, 3)) -> None:
    """`counts[i]` ingest entries in partition i, a group on each, one entry read in the last."""
    for part, count in zip(PARTS, counts, strict=True):
        for n in range(count):
            client.xadd(part.ingest_stream, {"v": "1", "source": "manual", "payload": json.dumps({"n": n})})
        client.xgroup_create(part.ingest_stream, INGEST_GROUP, id="0")
    client.xreadgroup(INGEST_GROUP, "pod-1", {PARTS[2].ingest_stream: ">"}, count=1)


def row(stdout: str, first: str) -> list[str]:
    [line] = [line for line in stdout.splitlines() if line.startswith(first + " ")]
    return line.split()


def test_streams_lists_every_partition_stream_and_a_total(redis_url: str, client) -> None:
    fill(client)
    result = soulcaster(redis_url, "streams")
    assert result.returncode == 0, result.stderr
    for part, length in zip(PARTS, ("2", "1", "3"), strict=True):
        assert row(result.stdout, part.ingest_stream)[1] == length
    _, length, dead, group, lag, pending, _, consumers, state = row(result.stdout, "total(stream:ingest)")
    assert (length, dead, group, lag, pending, consumers, state) == ("6", "0", "ingest", "5", "1", "1", "ok")
    assert row(result.stdout, "total(stream:feedback:new)")[1:3] == ["0", "0"]


def test_resume_clears_the_pause_of_each_chosen_partition(redis_url: str, client) -> None:
    fill(client)
    for part in PARTS:
        client.set(part.paused(part.ingest_stream, INGEST_GROUP), "too many dead letters")
    assert "PAUSED in 3 of 3" in soulcaster(redis_url, "streams").stdout

    one = soulcaster(
        redis_url, "streams", "resume", "--stream", "ingest", "--group", INGEST_GROUP, "--partition", "1"
    )
    assert one.stdout.strip() == "resumed"
    assert [bool(client.exists(p.paused(p.ingest_stream, INGEST_GROUP))) for p in PARTS] == [
        True,
        False,
        True,
    ]
    rest = soulcaster(redis_url, "streams", "resume", "--stream", "ingest", "--group", INGEST_GROUP)
    assert rest.stdout.strip() == "resumed 2 partitions"


def test_a_partition_outside_the_count_is_refused(redis_url: str, client) -> None:
    result = soulcaster(redis_url, "dlq", "list", "--partition", "3")
    assert result.returncode == 2 and "0..2" in result.stderr


def test_partitions_shows_each_partition_on_the_single_node(redis_url: str, client) -> None:
    fill(client)
    result = soulcaster(redis_url, "partitions")
    assert result.returncode == 0, result.stderr
    for part, length in zip(PARTS, ("2", "1", "3"), strict=True):
        _, tag, slot, *node, node_id, ingest, new = row(result.stdout, str(part.index))
        assert tag == KEYS.partitioning.tag(part.index) and int(slot) == key_slot(tag.encode())
        assert (" ".join(node), node_id) == ("single node", "-")
        assert part.ingest_stream.startswith("{" + tag + "}") and (ingest, new) == (length, "0")
    assert "total: 3 partitions, 6 ingest entries, 0 new-item entries" in result.stdout


def test_dead_letters_are_redriven_to_the_partition_they_came_from(redis_url: str, client) -> None:
    first = client.xadd(
        PARTS[0].ingest_dlq, {"v": "1", "payload": "{}", "original_id": "5-0", "error": "boom"}
    )
    last = client.xadd(
        PARTS[2].ingest_dlq, {"v": "1", "payload": "{}", "original_id": "6-0", "error": "bang"}
    )
    listed = soulcaster(redis_url, "dlq", "list").stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [["0", first], ["2", last]]

    narrowed = soulcaster(redis_url, "dlq", "redrive", "--partition", "2")
    assert "redriven: 1" in narrowed.stdout
    assert client.xlen(PARTS[0].ingest_dlq) == 1 and client.xlen(PARTS[2].ingest_dlq) == 0
    [(_, fields)] = client.xrange(PARTS[2].ingest_stream)
    assert fields["redriven_from"] == last and fields["redriven_error"] == "bang"

    assert "redriven: 1" in soulcaster(redis_url, "dlq", "redrive").stdout
    [(_, fields)] = client.xrange(PARTS[0].ingest_stream)
    assert fields["redriven_from"] == first and client.xlen(PARTS[1].ingest_stream) == 0
    assert "purged: 0" in soulcaster(redis_url, "dlq", "purge").stdout


def test_export_writes_every_partition_and_new_items_import_into_their_partition(
    redis_url: str, client, tmp_path: Path
) -> None:
    ids = [f"item-{n}" for n in range(12)]
    for item_id in ids:
        client.xadd(
            KEYS.for_item(item_id).new_item_stream, {NewItemField.VERSION: "1", NewItemField.ID: item_id}
        )
    exported = soulcaster(redis_url, "export", "--stream", "new")
    assert "exported 12 entries" in exported.stderr, exported.stderr
    records = [json.loads(line) for line in exported.stdout.splitlines()]
    assert sorted(r["fields"]["id"] for r in records) == sorted(ids)
    assert all(r["partition"] == KEYS.partitioning.of(r["fields"]["id"]) for r in records)
    only = soulcaster(redis_url, "export", "--stream", "new", "--partition", "1")
    assert {json.loads(line)["partition"] for line in only.stdout.splitlines()} == {1}

    dump = tmp_path / "new.jsonl"
    dump.write_text(exported.stdout)
    imported = soulcaster(redis_url, "import", "--stream", "new", str(dump), SOULCASTER_KEY_PREFIX="staging:")
    assert "imported 12 entries" in imported.stderr, imported.stderr
    staging = Keys("staging:", KEYS.partitioning)
    for part in staging.partitions:
        landed = [fields["id"] for _, fields in client.xrange(part.new_item_stream)]
        assert landed and all(KEYS.partitioning.of(i) == part.index for i in landed)


def test_janitor_trims_each_partition_stream(redis_url: str, client) -> None:
    for part, count in zip(PARTS, (2, 1, 3), strict=True):
        for n in range(count):
            client.xadd(part.ingest_stream, {"n": str(n)})
    result = soulcaster(redis_url, "janitor", "--once", REPLAY_WINDOW_SECONDS="0")
    assert result.returncode == 0, result.stderr
    for part, count in zip(PARTS, (2, 1, 3), strict=True):
        assert f"{part.ingest_stream}: removed {count}," in result.stdout
        assert client.xlen(part.ingest_stream) == 0
    assert f"{len(KEYS.consumed_streams)} streams: removed 6" in result.stdout


def test_ingest_entries_are_imported_through_the_publisher_into_their_partitions(
    redis_url: str, client, tmp_path: Path
) -> None:
    """From a single-node export into 3 partitions: each entry lands where its item id routes it,
    its own `received_at` and its old id kept."""
    single = Keys()
    for n in range(12):
        fields = {"v": "1", "source": "manual", "payload": json.dumps({"text": f"t{n}"})}
        client.xadd(single.ingest_stream, {**fields, "received_at": f"2026-11-01T00:00:{n:02}+00:00"})
    exported = soulcaster(redis_url, "export", INGEST_PARTITIONS="1")
    dump = tmp_path / "ingest.jsonl"
    dump.write_text(exported.stdout)

    imported = soulcaster(redis_url, "import", str(dump), SOULCASTER_KEY_PREFIX="staging:")
    assert "imported 12 entries" in imported.stderr, imported.stderr
    staging = Keys("staging:", KEYS.partitioning)
    landed = {part.index: client.xrange(part.ingest_stream) for part in staging.partitions}
    assert sum(map(len, landed.values())) == 12 and sum(1 for entries in landed.values() if entries) > 1
    old_ids = {entry_id for entry_id, _ in client.xrange(single.ingest_stream)}
    for partition, entries in landed.items():
        for _, fields in entries:
            assert KEYS.partitioning.of(fields["item_id"]) == partition
            assert fields["imported_from"] in old_ids and fields["received_at"].startswith("2026-11-01")


def publish_routed(redis_url: str, count: int) -> None:
    """`count` manual events, routed and published as the API would, into the 3 partitions."""
    import asyncio

    from redis.asyncio import Redis

    from services.ingest.routing import routed
    from shared.publisher import IngestPublisher, RawEvent

    async def publish() -> None:
        redis = Redis.from_url(redis_url, decode_responses=True)
        events = [routed(RawEvent.from_json("manual", {"text": f"report {n}"})) for n in range(count)]
        await IngestPublisher(redis, KEYS, producer="test").publish_many(events)
        await redis.aclose()

    asyncio.run(publish())


def test_replay_applies_each_partition_stream_in_its_own_partition(redis_url: str, client) -> None:
    publish_routed(redis_url, 9)
    lengths = [client.xlen(part.ingest_stream) for part in PARTS]
    assert sum(lengths) == 9 and all(lengths), lengths

    result = soulcaster(redis_url, "replay")
    assert result.returncode == 0, result.stderr
    assert "9 entries replayed" in result.stdout and "created: 9" in result.stdout, result.stdout
    for part, length in zip(PARTS, lengths, strict=True):
        stored = client.zrange(part.feedback_created, 0, -1)
        assert len(stored) == length and {KEYS.partitioning.of(i) for i in stored} == {part.index}

    again = soulcaster(redis_url, "replay", "--partition", "1")
    assert f"{lengths[1]} entries replayed" in again.stdout and "created" not in again.stdout, again.stdout


def test_index_sources_fills_each_partition_set_from_its_own_indexes(redis_url: str, client) -> None:
    client.zadd(PARTS[0].feedback_source("zendesk"), {"a": 1})
    client.zadd(PARTS[2].feedback_source("intercom"), {"b": 1})
    result = soulcaster(redis_url, "index-sources")
    assert "2 sources indexed: intercom, zendesk" in result.stdout, result.stdout
    assert [client.smembers(part.feedback_sources) for part in PARTS] == [{"zendesk"}, set(), {"intercom"}]
