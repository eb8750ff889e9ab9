"""Partition routing and hash tags: which keys share a slot, and that single-node names never change."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from shared.keys import Keys, PartitionNotChosen
from shared.models import item_id_for
from shared.partitions import Partitioning, parse_partition_set, partition_tag
from shared.settings import Settings


def slot(key: str) -> int:
    return key_slot(key.encode())


@pytest.mark.parametrize("count", [1, 2, 3, 4, 6, 12, 64])
def test_each_partition_tag_lands_in_its_share_of_slots(count: int) -> None:
    for partition in range(count):
        share = REDIS_CLUSTER_HASH_SLOTS / count
        assert partition * share <= slot(f"{{{partition_tag(partition, count)}}}") < (partition + 1) * share


def test_single_node_keys_keep_their_historic_names() -> None:
    keys = Settings().keys()
    assert [
        keys.feedback("i"),
        keys.feedback_external("reddit", "abc"),
        keys.feedback_created,
        keys.unclustered,
        keys.ingest_stream,
        keys.ingest_dlq,
        keys.new_item_stream,
        keys.cluster("c"),
        keys.clusters_all,
        keys.cluster_lock,
        keys.vectors("minilm"),
        keys.poll_requests_stream,
        keys.event_outcomes("3600000-0"),
    ] == [
        "feedback:i",
        "feedback:external:reddit:abc",
        "feedback:created",
        "feedback:unclustered",
        "stream:ingest",
        "stream:ingest:dlq",
        "stream:feedback:new",
        "cluster:c",
        "clusters:all",
        "cluster:lock",
        "vectors:minilm",
        "stream:poll:requests",
        "ingest:events:1",
    ]


def test_an_items_keys_share_the_slot_of_its_partition_streams() -> None:
    keys = Keys("acme:", Partitioning(6, tagged=True))
    item_id = item_id_for("reddit", "abc", "")
    mine = keys.for_item(item_id)
    same_slot = {
        slot(key)
        for key in (
            keys.feedback(item_id),
            keys.feedback_external("reddit", "abc"),
            keys.feedback_external("reddit", "abc", item_id),
            mine.ingest_stream,
            mine.ingest_dlq,
            mine.new_item_stream,
            mine.unclustered,
            mine.feedback_created,
            mine.feedback_source("reddit"),
            mine.event_outcomes("1-0"),
        )
    }
    assert len(same_slot) == 1
    assert keys.feedback(item_id).startswith("acme:{p")


def test_partitions_spread_items_and_have_distinct_slots() -> None:
    keys = Keys("", Partitioning(3, tagged=True))
    counts = [0, 0, 0]
    for n in range(3000):
        counts[keys.partitioning.of(item_id_for("manual", str(n), ""))] += 1
    assert min(counts) > 900
    assert len({slot(p.ingest_stream) for p in keys.partitions}) == 3


def test_a_brace_in_an_id_cannot_steer_the_slot() -> None:
    keys = Keys("", Partitioning(3, tagged=True))
    item_id = item_id_for("sentry", "{abc}", "")
    assert slot(keys.feedback_external("sentry", "{abc}")) == slot(keys.for_item(item_id).ingest_stream)


def test_cluster_state_shares_one_slot_and_request_streams_their_own() -> None:
    keys = Keys("", Partitioning(3, tagged=True))
    assert (
        len(
            {
                slot(k)
                for k in (keys.cluster("a"), keys.cluster_items("b"), keys.cluster_lock, keys.vectors("m"))
            }
        )
        == 1
    )
    poll = keys.poll_requests_stream
    assert slot(poll) == slot(keys.dead_letter_stream(poll)) == slot(keys.last_errors(poll, "g"))


def test_a_partition_key_without_a_chosen_partition_is_refused() -> None:
    keys = Keys("", Partitioning(2, tagged=True))
    with pytest.raises(PartitionNotChosen):
        _ = keys.ingest_stream
    assert len(keys.consumed_streams) == 6


def test_owned_partitions_parse_ranges_and_refuse_strangers() -> None:
    assert parse_partition_set("", 4) == [0, 1, 2, 3]
    assert parse_partition_set("0-1, 3", 4) == [0, 1, 3]
    for bad in ("4", "2-1", "x", "1-"):
        with pytest.raises(ValueError):
            parse_partition_set(bad, 4)


def test_settings_refuse_a_braced_prefix_in_cluster_mode() -> None:
    with pytest.raises(ValidationError, match="may not hold"):
        Settings(redis_cluster=True, key_prefix="{x}:")
    with pytest.raises(ValidationError):
        Settings(ingest_partitions=2, ingest_partitions_owned="2")
    assert (
        Settings(redis_cluster=True, ingest_partitions=3).keys().partition(2).ingest_stream.startswith("{p2.")
    )
