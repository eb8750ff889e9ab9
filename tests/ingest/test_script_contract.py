"""One contract for the write script: Python and Lua cannot disagree, and the dry run is the script's own."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis.asyncio import Redis

from services.ingest import replay as replay_module
from services.ingest.event_writer import EventWriter
from services.ingest.outcomes import read_outcome
from services.ingest.replay import Replayer
from services.ingest.script_contract import BODY, CONTRACT, SCRIPT, literal_names, undefined_names
from shared.keys import CLOSED_STATUS, ItemField, Keys, NewItemField, Outcome, OutcomeField
from shared.settings import Settings
from tests.ingest.test_ingest_worker import NORMALIZERS, consumer_for, drain, publish, shouting_normalizer


def test_the_script_spells_no_shared_name_itself() -> None:
    assert undefined_names() == set()
    assert literal_names() == set()
    assert SCRIPT.endswith(BODY)
    assert "local STATUS = {" in SCRIPT and f"created = '{Outcome.CREATED}'" in SCRIPT


def test_a_rename_on_the_lua_side_alone_is_caught() -> None:
    assert undefined_names(BODY.replace("STATUS.created", "STATUS.made")) == {"STATUS.made"}
    assert undefined_names(BODY.replace("NEW_ITEM.event_id", "NEW_ITEM.entry_id")) == {"NEW_ITEM.entry_id"}
    assert literal_names(BODY.replace("STATUS.duplicate", "'duplicate'")) == {"duplicate"}
    assert literal_names(BODY.replace("ITEM.revision", '"revision"')) == {"revision"}


def test_a_rename_on_the_python_side_alone_is_caught() -> None:
    """Renaming `Outcome.CREATED` (or a field constant) changes the header's key, not the script's use."""
    renamed = {
        **CONTRACT,
        "STATUS": {("made" if k == "created" else k): v for k, v in CONTRACT["STATUS"].items()},
    }
    assert undefined_names(BODY, renamed) == {"STATUS.created"}
    fields = {**CONTRACT, "ITEM": {"state": ItemField.STATUS, "revision": ItemField.REVISION}}
    assert undefined_names(BODY, fields) == {"ITEM.status"}


async def test_what_the_script_writes_uses_the_python_names(redis: Redis, settings: Settings) -> None:
    """Every path through the script, checked against shared/keys.py: statuses, stream and record fields."""
    keys = Keys()
    entries = await publish(
        redis,
        {"ref": "c-1", "text": "first", "revision": 1},
        {"ref": "c-1", "text": "first"},
        {"ref": "c-1", "text": "edited", "action": "edited", "revision": 3},
        {"ref": "c-1", "text": "stale", "action": "edited", "revision": 2},
        {"ref": "c-1", "text": "edited", "action": "edited", "revision": 3},
        {"ref": "c-2", "text": "x", "action": "label"},
        {"ref": "c-3", "text": "never seen", "action": "closed", "status": CLOSED_STATUS},
    )
    await drain([consumer_for(settings, redis)], redis)

    outcomes = [await read_outcome(redis, keys, entry_id) for entry_id in entries]
    assert [o["status"] for o in outcomes if o] == [
        Outcome.CREATED,
        Outcome.DUPLICATE,
        Outcome.UPDATED,
        Outcome.DUPLICATE,
        Outcome.UNCHANGED,
        Outcome.IGNORED,
        Outcome.IGNORED,
    ]
    outcome_fields = {
        name for name in vars(OutcomeField).values() if isinstance(name, str) and name.islower()
    }
    for outcome in outcomes:
        assert outcome is not None and set(outcome) <= outcome_fields
    [(_, announced)] = await redis.xrange(keys.new_item_stream)
    assert set(announced) == {v for k, v in vars(NewItemField).items() if k.isupper()}
    item_key = keys.feedback(announced[NewItemField.ID])
    assert await redis.hget(item_key, ItemField.REVISION) == "3"
    assert await redis.smembers(keys.feedback_sources) == {"note"}


async def snapshot(redis: Redis) -> dict[str, Any]:
    return {key: await redis.dump(key) for key in sorted(await redis.keys("*"))}


async def test_dry_run_and_real_replay_agree_on_a_mixed_range(
    redis: Redis, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New, duplicate (an older revision), updated and unchanged in one range, split over several batches."""
    keys = Keys()
    await publish(
        redis,
        {"ref": "g-1", "text": "opened", "revision": 1},
        {"ref": "g-1", "text": "edited later", "action": "edited", "revision": 3},
        {"ref": "g-1", "text": "an older edit", "action": "edited", "revision": 2},
        {"ref": "g-2", "text": "a second issue", "revision": 1},
        {"ref": "g-3"},  # no text: dead-lettered now, stored once v2 of the normalizer accepts it
    )
    await drain([consumer_for(settings, redis)], redis)
    # Published after the worker ran: new to the replay, and repeated within the range.
    await publish(redis, {"ref": "g-4", "text": "late"}, {"ref": "g-4", "text": "late"})
    monkeypatch.setattr(replay_module, "BATCH", 2)  # the dry run must carry its predictions across batches
    writer = EventWriter(redis, keys, 3600)
    replayer = Replayer(redis, keys, {"note": shouting_normalizer}, writer)

    before = await snapshot(redis)
    predicted = await replayer.replay(dry_run=True)
    assert await snapshot(redis) == before, "a dry run writes nothing"
    applied = await replayer.replay()

    assert predicted.outcomes == applied.outcomes
    # g-1: its first event and its older edit are older than the stored revision; the newer edit and
    # g-2 are rewritten by v2; g-3 and g-4 are new; g-4's repeat changes nothing.
    assert applied.outcomes == {"duplicate": 2, "updated": 2, "created": 2, "unchanged": 1}
    g1 = await redis.get(keys.feedback_external("note", "g-1"))
    assert await redis.hget(keys.feedback(g1), "body") == "edited later"
    assert (await Replayer(redis, keys, NORMALIZERS, writer).replay(dry_run=True)).invalid.keys() == {
        entry_id
        for entry_id, fields in await redis.xrange(keys.ingest_stream)
        if json.loads(fields["payload"]) == {"ref": "g-3"}
    }
