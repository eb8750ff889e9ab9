"""The ingest worker against a real Redis: exactly-once effects, updates in place, dead letters."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from services.ingest.normalized import EventContext, Ignored, InvalidPayload, Normalized, NormalizeResult
from services.ingest.outcomes import read_outcome
from services.ingest.worker import build_ingest_consumer
from shared.consumer import StreamConsumer, StreamMessage
from shared.keys import INGEST_GROUP, Keys
from shared.models import FeedbackItem, item_id_for
from shared.publisher import IngestPublisher, RawEvent
from shared.settings import Settings
from tests.support.drained import ingested
from tests.support.waiting import eventually


def note_normalizer(payload: Any, context: EventContext) -> NormalizeResult:
    """A small source for these tests: `{"ref", "text", "action"?, "revision"?}`."""
    if not isinstance(payload, dict) or "text" not in payload:
        raise InvalidPayload("a note needs a text")
    if payload.get("action") == "label":
        return Ignored("labels carry no feedback")
    ref = payload.get("ref")
    item = FeedbackItem(
        id=context.item_id("note", ref),
        source="note",
        external_id=ref,
        title=payload["text"][:20],
        body=payload["text"],
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        status=payload.get("status"),
    )
    action = payload.get("action", "opened")
    return Normalized(
        item,
        update_existing=action != "opened",
        create_if_new=action != "closed",
        revision=payload.get("revision"),
    )


NORMALIZERS = {"note": note_normalizer}


def consumer_for(settings: Settings, redis: Redis, name: str = "w1") -> StreamConsumer:
    worker_settings = settings.model_copy(update={"consumer_name": name})
    return build_ingest_consumer(worker_settings, redis, Keys(), NORMALIZERS)


async def publish(redis: Redis, *payloads: dict[str, Any]) -> list[str]:
    publisher = IngestPublisher(redis, Keys(), producer="test")
    return await publisher.publish_many([RawEvent.from_json("note", p) for p in payloads])


async def drain(consumers: list[StreamConsumer], redis: Redis, timeout: float = 10.0) -> None:
    """Run the consumers until the group has read everything and nothing is pending."""
    keys = Keys()
    tasks = [asyncio.create_task(c.run()) for c in consumers]
    try:
        await eventually(lambda: ingested(redis, keys), "the ingest group drained", timeout)
    finally:
        for consumer in consumers:
            consumer.stop()
        await asyncio.gather(*tasks)


async def item_state(redis: Redis) -> dict[str, Any]:
    keys = Keys()
    return {
        "created": await redis.zcard(keys.feedback_created),
        "by_source": await redis.zcard(keys.feedback_source("note")),
        "unclustered": await redis.scard(keys.unclustered),
        "announced": await redis.xlen(keys.new_item_stream),
    }


async def test_each_event_becomes_one_item_with_indexes_and_announcement(
    redis: Redis, settings: Settings
) -> None:
    [entry_id] = await publish(redis, {"ref": "n-1", "text": "the export button does nothing"})
    await drain([consumer_for(settings, redis)], redis)

    keys = Keys()
    outcome = await read_outcome(redis, Keys(), entry_id)
    assert outcome["status"] == "created"
    stored = FeedbackItem.from_hash(await redis.hgetall(keys.feedback(outcome["feedback_id"])))
    assert stored.body == "the export button does nothing"
    assert stored.clustered is False
    assert await redis.get(keys.feedback_external("note", "n-1")) == stored.id
    assert await item_state(redis) == {"created": 1, "by_source": 1, "unclustered": 1, "announced": 1}
    [(_, announced)] = await redis.xrange(keys.new_item_stream)
    assert announced["id"] == stored.id
    assert announced["event_id"] == entry_id


async def test_redelivered_entry_changes_nothing(redis: Redis, settings: Settings) -> None:
    [entry_id] = await publish(redis, {"ref": "n-1", "text": "crash on save"})
    await drain([consumer_for(settings, redis)], redis)
    before = await item_state(redis)

    # Deliver the very same entry again, as a reclaim after a lost ack would.
    consumer = consumer_for(settings, redis)
    fields = (await redis.xrange(Keys().ingest_stream))[0][1]
    failures = await consumer._handler([StreamMessage(entry_id, fields, 2)])
    assert failures == {}
    assert await item_state(redis) == before


async def test_same_external_id_from_two_events_is_stored_once(redis: Redis, settings: Settings) -> None:
    first, second = await publish(redis, {"ref": "n-7", "text": "slow"}, {"ref": "n-7", "text": "slow again"})
    await drain([consumer_for(settings, redis)], redis)
    keys = Keys()
    assert (await read_outcome(redis, keys, first))["status"] == "created"
    duplicate = await read_outcome(redis, Keys(), second)
    assert duplicate["status"] == "duplicate"
    assert await item_state(redis) == {"created": 1, "by_source": 1, "unclustered": 1, "announced": 1}


async def test_later_event_updates_the_item_in_place_without_announcing_it(
    redis: Redis, settings: Settings
) -> None:
    await publish(redis, {"ref": "n-2", "text": "login fails", "revision": 1})
    await publish(
        redis, {"ref": "n-2", "text": "login fails on Safari only", "action": "edited", "revision": 2}
    )
    await drain([consumer_for(settings, redis)], redis)
    keys = Keys()
    item_id = await redis.get(keys.feedback_external("note", "n-2"))
    assert await redis.hget(keys.feedback(item_id), "body") == "login fails on Safari only"
    assert await item_state(redis) == {"created": 1, "by_source": 1, "unclustered": 1, "announced": 1}


async def test_closing_update_removes_a_waiting_item_from_unclustered(
    redis: Redis, settings: Settings
) -> None:
    await publish(redis, {"ref": "n-3", "text": "dark mode", "revision": 1})
    await publish(
        redis, {"ref": "n-3", "text": "dark mode", "action": "closed", "status": "closed", "revision": 2}
    )
    await drain([consumer_for(settings, redis)], redis)
    keys = Keys()
    item_id = await redis.get(keys.feedback_external("note", "n-3"))
    assert await redis.hget(keys.feedback(item_id), "status") == "closed"
    assert await redis.scard(keys.unclustered) == 0


async def test_stale_update_never_rolls_an_item_back(redis: Redis, settings: Settings) -> None:
    await publish(redis, {"ref": "n-4", "text": "v1", "revision": 1})
    await publish(redis, {"ref": "n-4", "text": "v3", "action": "edited", "revision": 3})
    [stale] = await publish(redis, {"ref": "n-4", "text": "v2", "action": "edited", "revision": 2})
    await drain([consumer_for(settings, redis)], redis)
    keys = Keys()
    item_id = await redis.get(keys.feedback_external("note", "n-4"))
    assert await redis.hget(keys.feedback(item_id), "body") == "v3"
    assert (await read_outcome(redis, Keys(), stale))["reason"] == "older than the stored revision"


async def test_update_about_an_unknown_item_that_only_updates_is_not_stored(
    redis: Redis, settings: Settings
) -> None:
    [entry_id] = await publish(redis, {"ref": "n-5", "text": "old closed issue", "action": "closed"})
    await drain([consumer_for(settings, redis)], redis)
    assert (await read_outcome(redis, Keys(), entry_id))["status"] == "ignored"
    assert (await item_state(redis))["created"] == 0


async def test_ignored_event_is_recorded_and_not_stored(redis: Redis, settings: Settings) -> None:
    [entry_id] = await publish(redis, {"ref": "n-6", "text": "x", "action": "label"})
    await drain([consumer_for(settings, redis)], redis)
    outcome = await read_outcome(redis, Keys(), entry_id)
    assert outcome == {"status": "ignored", "feedback_id": "", "reason": "labels carry no feedback"}
    assert (await item_state(redis))["created"] == 0


async def test_invalid_events_are_dead_lettered_with_the_reason(redis: Redis, settings: Settings) -> None:
    keys = Keys()
    bad_json = await redis.xadd(keys.ingest_stream, {"v": "1", "source": "note", "payload": "{not json"})
    bad_shape = (await publish(redis, {"ref": "n-8"}))[0]
    unknown = await redis.xadd(keys.ingest_stream, {"v": "1", "source": "fax", "payload": "{}"})
    future = await redis.xadd(keys.ingest_stream, {"v": "9", "source": "note", "payload": "{}"})
    good = (await publish(redis, {"ref": "n-9", "text": "fine"}))[0]
    await drain([consumer_for(settings, redis)], redis)

    dead = {fields["original_id"]: fields["error"] for _, fields in await redis.xrange(keys.ingest_dlq)}
    assert "payload is not valid JSON" in dead[bad_json]
    assert "a note needs a text" in dead[bad_shape]
    assert "no normalizer for source 'fax'" in dead[unknown]
    assert "unsupported event schema version '9'" in dead[future]
    assert good not in dead
    assert (await read_outcome(redis, Keys(), bad_json))["status"] == "dead_lettered"
    assert (await item_state(redis))["created"] == 1


async def test_several_workers_in_one_group_store_each_item_once(redis: Redis, settings: Settings) -> None:
    payloads = [{"ref": f"n-{i % 300}", "text": f"report {i % 300}"} for i in range(900)]
    await publish(redis, *payloads)
    workers = [
        consumer_for(settings.model_copy(update={"ingest_batch_size": 50}), redis, f"w{i}") for i in range(3)
    ]
    await drain(workers, redis)
    assert await item_state(redis) == {"created": 300, "by_source": 300, "unclustered": 300, "announced": 300}


async def test_published_payload_is_kept_verbatim_for_replay(redis: Redis) -> None:
    payload = {"ref": "n-10", "text": "unicode ✓ kept", "nested": {"a": [1, 2]}}
    [entry_id] = await publish(redis, payload)
    [(_, fields)] = await redis.xrange(Keys().ingest_stream, entry_id, entry_id)
    assert json.loads(fields["payload"]) == payload
    assert fields["producer"] == "test"


async def test_identical_update_is_reported_unchanged(redis: Redis, settings: Settings) -> None:
    await publish(redis, {"ref": "n-11", "text": "same"})
    [again] = await publish(redis, {"ref": "n-11", "text": "same", "action": "edited"})
    await drain([consumer_for(settings, redis)], redis)
    assert (await read_outcome(redis, Keys(), again))["status"] == "unchanged"


def shouting_normalizer(payload: Any, context: EventContext) -> NormalizeResult:
    """Version 2 of the note source: upper-case titles, and notes without text are accepted."""
    payload = {"text": "(empty note)", **payload}
    result = note_normalizer(payload, context)
    if isinstance(result, Normalized):
        item = result.item.model_copy(update={"title": result.item.title.upper()})
        return Normalized(item, result.update_existing, result.create_if_new, result.revision)
    return result


async def test_replay_backfills_through_a_new_normalizer_and_is_idempotent(
    redis: Redis, settings: Settings
) -> None:
    from services.ingest.event_writer import EventWriter
    from services.ingest.replay import Replayer

    await publish(redis, {"ref": "r-1", "text": "first"}, {"ref": "r-2", "text": "second"}, {"ref": "r-3"})
    await drain([consumer_for(settings, redis)], redis)
    assert (await item_state(redis))["created"] == 2, "the textless note was dead-lettered"

    keys = Keys()
    writer = EventWriter(redis, keys, 3600)
    v1 = Replayer(redis, keys, NORMALIZERS, writer)
    assert (await v1.replay()).outcomes == {"unchanged": 2}

    v2 = Replayer(redis, keys, {"note": shouting_normalizer}, writer)
    predicted = await v2.replay(dry_run=True)
    assert predicted.outcomes == {"updated": 2, "created": 1}
    assert (await item_state(redis))["created"] == 2, "a dry run writes nothing"

    applied = await v2.replay()
    assert applied.outcomes == predicted.outcomes
    item_id = await redis.get(keys.feedback_external("note", "r-1"))
    assert await redis.hget(keys.feedback(item_id), "title") == "FIRST"
    assert await item_state(redis) == {"created": 3, "by_source": 3, "unclustered": 3, "announced": 3}

    assert (await v2.replay()).outcomes == {"unchanged": 3}


async def test_worker_killed_between_its_write_and_its_ack(redis: Redis, settings: Settings) -> None:
    keys = Keys()
    await publish(redis, *[{"ref": f"k-{i}", "text": f"report {i}"} for i in range(5)])
    # A pod reads the batch and writes its effects, then dies before acking.
    dead = consumer_for(settings, redis, "dead-pod")
    await dead.ensure_group()
    [[_, entries]] = await redis.xreadgroup(INGEST_GROUP, "dead-pod", {keys.ingest_stream: ">"}, count=5)
    assert await dead._handler([StreamMessage(entry_id, fields) for entry_id, fields in entries]) == {}
    written = await item_state(redis)
    assert (
        written["created"] == 5 and (await redis.xpending(keys.ingest_stream, INGEST_GROUP))["pending"] == 5
    )

    # Another pod reclaims the entries after the visibility timeout and applies them again.
    await drain([consumer_for(settings, redis, "survivor")], redis)
    assert (
        await item_state(redis) == written == {"created": 5, "by_source": 5, "unclustered": 5, "announced": 5}
    )


async def test_a_lone_surrogate_fails_its_event_alone(redis: Redis, settings: Settings) -> None:
    """Issue 11's batch: one title Redis cannot carry, sent with thirty-one valid items."""
    keys = Keys()
    items = [
        {"source": "x", "title": "ok", "external_id": "a"},
        {"source": "x", "title": "\ud800", "external_id": "b"},
    ]
    items += [{"source": "x", "title": f"valid {i}", "external_id": f"v-{i}"} for i in range(30)]
    ids = [
        await redis.xadd(keys.ingest_stream, {"v": "1", "source": "feedback", "payload": json.dumps(item)})
        for item in items
    ]
    consumer = build_ingest_consumer(settings.model_copy(update={"consumer_name": "w1"}), redis, keys)
    await drain([consumer], redis)

    assert await redis.zcard(keys.feedback_created) == 31
    [(_, dead)] = await redis.xrange(keys.ingest_dlq)
    assert dead["original_id"] == ids[1]
    assert dead["deliveries"] == "1", "dead-lettered at once, not retried"
    assert "UnicodeEncodeError" in dead["error"] and "surrogates not allowed" in dead["error"]
    assert (await read_outcome(redis, keys, ids[1]))["status"] == "dead_lettered"


def fragile_normalizer(payload: Any, context: EventContext) -> NormalizeResult:
    """The note source with a bug that one payload triggers."""
    if payload.get("text") == "boom":
        raise ZeroDivisionError("division by zero")
    return note_normalizer(payload, context)


async def test_any_normalizer_error_is_dead_lettered_at_once_and_spares_the_batch(
    redis: Redis, settings: Settings
) -> None:
    await publish(redis, {"ref": "f-1", "text": "fine"})
    [boom] = await publish(redis, {"ref": "f-2", "text": "boom"})
    await publish(redis, {"ref": "f-3", "text": "fine too"})
    worker_settings = settings.model_copy(update={"consumer_name": "w1"})
    await drain([build_ingest_consumer(worker_settings, redis, Keys(), {"note": fragile_normalizer})], redis)

    assert (await item_state(redis))["created"] == 2
    [(_, dead)] = await redis.xrange(Keys().ingest_dlq)
    assert (dead["original_id"], dead["deliveries"]) == (boom, "1")
    assert dead["error"] == "InvalidPayload: ZeroDivisionError: division by zero"


async def test_out_of_range_reddit_timestamps_are_permanent_failures(
    redis: Redis, settings: Settings
) -> None:
    """`created_utc` 1e20, Infinity and -1e12 make `datetime.fromtimestamp` raise: bad data, never retried."""
    keys = Keys()
    post = {"kind": "t3", "data": {"id": "ok1", "title": "fine", "created_utc": 1476975628.0}}
    good = await redis.xadd(keys.ingest_stream, {"v": "1", "source": "reddit", "payload": json.dumps(post)})
    bad = {}
    for raw in ("1e20", "Infinity", "-1e12"):
        payload = json.dumps({"kind": "t3", "data": {"id": f"bad{raw}", "title": "t", "created_utc": 0}})
        payload = payload.replace('"created_utc": 0', f'"created_utc": {raw}')
        bad[await redis.xadd(keys.ingest_stream, {"v": "1", "source": "reddit", "payload": payload})] = raw
    consumer = build_ingest_consumer(settings.model_copy(update={"consumer_name": "w1"}), redis, keys)
    await drain([consumer], redis)

    dead = {fields["original_id"]: fields for _, fields in await redis.xrange(keys.ingest_dlq)}
    assert set(dead) == set(bad)
    for entry in dead.values():
        assert entry["deliveries"] == "1"
        assert entry["error"].startswith("InvalidPayload: ")
        assert "created_utc" in entry["error"], entry["error"]
    assert (await read_outcome(redis, keys, good))["status"] == "created"


async def test_a_batch_failed_midway_is_retried_one_by_one_without_losing_outcomes(
    redis: Redis, settings: Settings
) -> None:
    """A script error after some events were applied: the one-by-one retry finds their outcomes."""
    keys = Keys()
    first, second = await publish(redis, {"ref": "m-1", "text": "one"}, {"ref": "m-2", "text": "two"})
    # The second event's item key holds a string, so its HSET fails inside the batch's script call.
    await redis.set(keys.feedback(item_id_for("note", "m-2", second)), "not a hash")
    await drain([consumer_for(settings, redis)], redis)

    assert (await read_outcome(redis, keys, first))["status"] == "created"
    assert await redis.zcard(keys.feedback_created) == 1
    assert await redis.xlen(keys.new_item_stream) == 1, "the first event was not applied twice"
    [(_, dead)] = await redis.xrange(keys.ingest_dlq)
    assert dead["original_id"] == second and "WRONGTYPE" in dead["error"]
