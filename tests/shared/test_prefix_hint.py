"""Operator commands that find nothing say so, and point at the prefix that holds the data."""

from __future__ import annotations

from shared.keys import Keys
from tests.shared.test_operator_commands import soulcaster

HINT = (
    "hint: nothing under the key prefix '', but keys exist under the prefix 'dev:'; "
    "set SOULCASTER_KEY_PREFIX=dev: to see them"
)


def test_dlq_list_says_when_the_dead_letter_stream_is_empty(redis_url: str, client) -> None:
    result = soulcaster(redis_url, "dlq", "list")
    assert result.returncode == 0
    assert result.stdout.strip() == "no dead letters in stream:ingest:dlq"


def test_streams_dlq_and_export_point_at_the_dev_prefix_when_theirs_is_empty(
    redis_url: str,
    client,
) -> None:
    client.xadd(Keys("dev:").ingest_stream, {"source": "manual", "payload": "{}"})
    streams = soulcaster(redis_url, "streams")
    dlq = soulcaster(redis_url, "dlq", "list")
    export = soulcaster(redis_url, "export")
    assert "no group" in streams.stdout and streams.stdout.strip().endswith(HINT)
    assert dlq.stdout.strip().splitlines() == ["no dead letters in stream:ingest:dlq", HINT]
    assert export.stdout == "" and HINT in export.stderr


def test_no_hint_when_this_prefix_has_data(redis_url: str, client) -> None:
    client.xadd(Keys("dev:").ingest_stream, {"source": "manual", "payload": "{}"})
    client.xadd(Keys().ingest_stream, {"source": "manual", "payload": "{}"})
    assert "hint" not in soulcaster(redis_url, "streams").stdout
