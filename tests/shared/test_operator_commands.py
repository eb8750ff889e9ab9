"""The operator subcommands end to end: real processes against a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shared.keys import INGEST_GROUP, Keys

SOULCASTER = [sys.executable, "-m", "services.cli"]


def soulcaster(redis_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run(
        [*SOULCASTER, *args], env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False
    )


def test_streams_table_shows_lag_pending_and_dead_letters(redis_url: str, client) -> None:
    keys = Keys()
    for i in range(3):
        client.xadd(
            keys.ingest_stream, {"v": "1", "source": "manual", "payload": json.dumps({"text": f"t{i}"})}
        )
    client.xgroup_create(keys.ingest_stream, INGEST_GROUP, id="0")
    client.xreadgroup(INGEST_GROUP, "pod-1", {keys.ingest_stream: ">"}, count=1)
    client.xadd(keys.ingest_dlq, {"error": "bad"})

    result = soulcaster(redis_url, "streams")
    assert result.returncode == 0, result.stderr
    [row] = [line for line in result.stdout.splitlines() if line.startswith("stream:ingest ")]
    stream, length, dead, group, lag, pending, oldest, consumers, state = row.split()
    assert (stream, length, dead, group, lag, pending, consumers, state) == (
        "stream:ingest",
        "3",
        "1",
        "ingest",
        "2",
        "1",
        "1",
        "ok",
    )
    assert oldest.endswith("s")


def test_paused_group_is_shown_and_resumed(redis_url: str, client) -> None:
    keys = Keys()
    client.xgroup_create(keys.ingest_stream, INGEST_GROUP, id="0", mkstream=True)
    client.set(keys.paused(keys.ingest_stream, INGEST_GROUP), "too many dead letters")
    assert "PAUSED: too many dead letters" in soulcaster(redis_url, "streams").stdout

    result = soulcaster(redis_url, "streams", "resume", "--stream", "ingest", "--group", INGEST_GROUP)
    assert result.stdout.strip() == "resumed"
    assert not client.exists(keys.paused(keys.ingest_stream, INGEST_GROUP))


def test_dead_letters_are_listed_and_redriven(redis_url: str, client) -> None:
    keys = Keys()
    dead = client.xadd(keys.ingest_dlq, {"v": "1", "payload": "{}", "original_id": "5-0", "error": "boom"})
    listed = soulcaster(redis_url, "dlq", "list")
    assert dead in listed.stdout and "boom" in listed.stdout

    redriven = soulcaster(redis_url, "dlq", "redrive")
    assert "redriven: 1" in redriven.stdout
    [(_, fields)] = client.xrange(keys.ingest_stream)
    assert fields["redriven_from"] == dead and fields["redriven_error"] == "boom"


def test_export_then_import_into_another_deployment(redis_url: str, client, tmp_path: Path) -> None:
    keys = Keys()
    for i in range(4):
        client.xadd(
            keys.ingest_stream, {"v": "1", "source": "manual", "payload": json.dumps({"text": f"t{i}"})}
        )
    exported = soulcaster(redis_url, "export")
    assert exported.returncode == 0 and "exported 4 entries" in exported.stderr
    dump = tmp_path / "ingest.jsonl"
    dump.write_text(exported.stdout)

    env_prefix = {**os.environ, "REDIS_URL": redis_url, "SOULCASTER_KEY_PREFIX": "staging:"}
    imported = subprocess.run(
        [*SOULCASTER, "import", str(dump)],
        env=env_prefix,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "imported 4 entries" in imported.stderr, imported.stderr
    assert client.xlen(Keys("staging:").ingest_stream) == 4


def test_bad_range_is_refused_with_a_reason(redis_url: str, client) -> None:
    result = soulcaster(redis_url, "export", "--start", "last tuesday")
    assert result.returncode == 2
    assert "neither a stream id" in result.stderr


def test_replay_dry_run_reports_and_writes_nothing(redis_url: str, client) -> None:
    keys = Keys()
    client.xadd(
        keys.ingest_stream, {"v": "1", "source": "manual", "payload": json.dumps({"text": "hello there"})}
    )
    result = soulcaster(redis_url, "replay", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "created: 1" in result.stdout
    assert client.zcard(keys.feedback_created) == 0


def test_janitor_once_trims_acked_entries_and_keeps_pending_ones(redis_url: str, client) -> None:
    keys = Keys()
    ids = [client.xadd(keys.ingest_stream, {"v": "1", "n": str(i)}) for i in range(4)]
    client.xgroup_create(keys.ingest_stream, INGEST_GROUP, id="0")
    client.xreadgroup(INGEST_GROUP, "pod-1", {keys.ingest_stream: ">"}, count=4)
    client.xack(keys.ingest_stream, INGEST_GROUP, ids[0], ids[1], ids[3])

    env = {**os.environ, "REDIS_URL": redis_url, "REPLAY_WINDOW_SECONDS": "0"}
    result = subprocess.run(
        [*SOULCASTER, "janitor", "--once"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "stream:ingest: removed 3, kept 1 pending" in result.stdout
    assert [entry_id for entry_id, _ in client.xrange(keys.ingest_stream)] == [ids[2]]
