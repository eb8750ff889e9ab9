"""The streams' machine-readable contract (shared/contracts/) holds the code to what docs/streams.md says.

Names and versions are compared with shared/keys.py, the payload schemas with what the normalizers'
shapes generate, and every kind of entry the real writers put in the streams (the API, the
`IngestPublisher`, the ingest worker's Lua write, the dead-letterer, the sweeper, recluster, redrive,
import), read back with XRANGE from a real Redis, is validated against its schema.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft7Validator, Draft202012Validator
from jsonschema.exceptions import best_match
from redis.asyncio import Redis

from services.clusterer.lock import RedisLock
from services.clusterer.recluster import Reclusterer
from services.clusterer.sweeper import Sweeper
from services.ingest import payload_schemas
from services.ingest.normalized import EventContext, InvalidPayload
from services.ingest.normalizers import NORMALIZERS
from services.ingest.worker import build_ingest_consumer
from shared import contracts
from shared.consumer.dead_letter import MAX_ERROR_CHARS
from shared.keys import (
    CLUSTERER_GROUP,
    SCHEMA_VERSION,
    DeadLetterField,
    IngestField,
    Keys,
    NewItemField,
    ProvenanceField,
)
from shared.operations.dead_letters import DeadLetters
from shared.operations.stream_export import ImportPublisher, export_range, import_lines, publish_imported
from shared.publisher import IngestPublisher, RawEvent
from shared.settings import Settings
from tests.support.paths import FIXTURES
from tests.support.pipeline import running_pipeline

PATIENCE_SECONDS = 30


def names(field_class: type) -> set[str]:
    """The field names a `shared/keys.py` class defines."""
    return {value for name, value in vars(field_class).items() if name.isupper()}


def validator(kind: str) -> Draft202012Validator:
    """Formats (`uuid`, `date-time`) are checked too, not only read as annotations."""
    return Draft202012Validator(
        contracts.load_schema(kind), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def assert_valid(kind: str, entry: dict[str, Any]) -> None:
    error = best_match(validator(kind).iter_errors(entry))
    assert error is None, f"{kind} breaks the contract at {error.json_path}: {error.message[:300]}"


def assert_ingest_entry_valid(fields: dict[str, str]) -> None:
    """The entry, and its payload against the source's payload schema."""
    assert_valid(contracts.INGEST_ENTRY, fields)
    payload = json.loads(fields[IngestField.PAYLOAD])
    assert_valid(contracts.payload_kind(fields[IngestField.SOURCE]), payload)


def asyncapi_document() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        contracts.contract_file(contracts.ASYNCAPI_DOCUMENT).read_text(encoding="utf-8")
    )
    return document


# --- the schemas against shared/keys.py and the normalizers -------------------------------------------


def test_ingest_entry_schema_names_every_field_and_the_version() -> None:
    schema = contracts.load_schema(contracts.INGEST_ENTRY)
    assert set(schema["properties"]) == names(IngestField) | names(ProvenanceField)
    assert set(schema["required"]) == {IngestField.VERSION, IngestField.SOURCE, IngestField.PAYLOAD}
    assert schema["properties"][IngestField.VERSION]["const"] == SCHEMA_VERSION
    assert schema["additionalProperties"] is False


def test_new_item_entry_schema_names_every_field_and_the_version() -> None:
    schema = contracts.load_schema(contracts.NEW_ITEM_ENTRY)
    assert set(schema["properties"]) == names(NewItemField) | names(ProvenanceField)
    assert set(schema["required"]) == {
        NewItemField.VERSION,
        NewItemField.ID,
        NewItemField.SOURCE,
        NewItemField.CREATED_AT,
    }
    assert schema["properties"][NewItemField.VERSION]["const"] == SCHEMA_VERSION
    assert schema["additionalProperties"] is False


def test_dead_letter_schema_requires_every_field_the_runtime_adds() -> None:
    schema = contracts.load_schema(contracts.DEAD_LETTER_ENTRY)
    assert set(schema["properties"]) == set(schema["required"]) == names(DeadLetterField)
    assert schema["properties"][DeadLetterField.ERROR]["maxLength"] == MAX_ERROR_CHARS


def test_every_source_has_a_normalizer_and_a_payload_schema() -> None:
    schema = contracts.load_schema(contracts.INGEST_ENTRY)
    sources = schema["properties"][IngestField.SOURCE]["enum"]
    assert set(sources) == set(NORMALIZERS) == set(payload_schemas.PAYLOAD_SHAPES)
    linked = {
        rule["if"]["properties"][IngestField.SOURCE]["const"]: rule["then"]["properties"][
            IngestField.PAYLOAD
        ]["contentSchema"]["$ref"]
        for rule in schema["allOf"]
    }
    assert linked == {source: f"{contracts.payload_kind(source)}.schema.json" for source in sources}


@pytest.mark.parametrize("source", sorted(payload_schemas.PAYLOAD_SHAPES))
def test_payload_schema_is_what_the_normalizer_shape_generates(source: str) -> None:
    committed = contracts.schema_file(contracts.payload_kind(source)).read_text(encoding="utf-8")
    assert committed == payload_schemas.rendered(source), (
        f"payload-{source}.schema.json is stale: run `python -m services.ingest.payload_schemas`"
    )


RECORDED_PAYLOADS = sorted(
    path
    for source in payload_schemas.PAYLOAD_SHAPES
    for path in (FIXTURES / source).glob("*.json")
    if path.name != "ping.json"  # answered by the API, never published
)


@pytest.mark.parametrize("path", RECORDED_PAYLOADS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recorded_payloads_validate_against_their_source_schema(path: Path) -> None:
    source = path.parent.name
    recorded = json.loads(path.read_text(encoding="utf-8"))
    payloads = recorded if source == "github" and isinstance(recorded, list) else [recorded]
    if source == "reddit":
        payloads = recorded["data"]["children"]
    for payload in payloads:
        assert_valid(contracts.payload_kind(source), payload)


REJECTED_PAYLOADS = [
    ("manual", {"title": "no text"}),
    ("reddit", {"kind": "t3", "data": {"id": "x"}}),
    ("github", {"action": "opened", "issue": {}}),
    ("feedback", {"source": "Not A Source!", "title": "t"}),
    ("sentry", ["not", "an", "object"]),
]


@pytest.mark.parametrize(("source", "payload"), REJECTED_PAYLOADS, ids=[s for s, _ in REJECTED_PAYLOADS])
def test_payload_schemas_reject_what_the_normalizers_reject(source: str, payload: Any) -> None:
    with pytest.raises(InvalidPayload):
        NORMALIZERS[source](payload, EventContext("1-0", datetime.now(UTC)))
    assert not validator(contracts.payload_kind(source)).is_valid(payload)


# --- the AsyncAPI document -----------------------------------------------------------------------------


def test_asyncapi_document_is_valid_asyncapi_3() -> None:
    """Against the official AsyncAPI 3.0.0 JSON Schema (tests/fixtures/SOURCES.md says where it is from)."""
    official = json.loads((FIXTURES / "asyncapi-3.0.0.schema.json").read_text(encoding="utf-8"))
    error = best_match(Draft7Validator(official).iter_errors(asyncapi_document()))
    assert error is None, f"{error.json_path}: {error.message[:300]}"


def test_asyncapi_channels_are_the_streams_under_any_prefix() -> None:
    document = asyncapi_document()
    assert document["info"]["version"] == SCHEMA_VERSION
    addresses = {name: channel["address"] for name, channel in document["channels"].items()}
    for prefix in ("", "staging:"):
        keys = Keys(prefix)
        resolved = {name: address.replace("{prefix}", prefix) for name, address in addresses.items()}
        assert resolved == {
            "ingest": keys.ingest_stream,
            "ingestDeadLetters": keys.dead_letter_stream(keys.ingest_stream),
            "newItems": keys.new_item_stream,
            "newItemDeadLetters": keys.dead_letter_stream(keys.new_item_stream),
        }


def test_asyncapi_references_every_schema_file_and_each_is_a_2020_12_schema() -> None:
    document = asyncapi_document()
    referenced = {
        payload["payload"]["schema"]["$ref"] for payload in document["components"]["messages"].values()
    } | {schema["schema"]["$ref"] for schema in document["components"]["schemas"].values()}
    on_disk = {path.name for path in Path(contracts.__file__).parent.glob("*.schema.json")}
    assert referenced == on_disk
    for name in on_disk:
        schema = json.loads(contracts.contract_file(name).read_text(encoding="utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        Draft202012Validator.check_schema(schema)


# --- what the real writers put in the streams ----------------------------------------------------------


async def eventually(condition: Callable[[], Awaitable[bool]]) -> None:
    deadline = asyncio.get_running_loop().time() + PATIENCE_SECONDS
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "state never reached"
        await asyncio.sleep(0.05)


def fixture(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


async def test_entries_the_api_and_the_ingest_worker_write_validate(redis: Redis, settings: Settings) -> None:
    keys = Keys()
    posts = [
        ("/ingest/reddit", {}, fixture("reddit/listing_new.json")["data"]["children"][:3]),
        ("/ingest/sentry", {"Sentry-Hook-Resource": "issue"}, fixture("sentry/issue_created.json")),
        ("/ingest/sentry", {"Sentry-Hook-Resource": "event_alert"}, fixture("sentry/event_alert.json")),
        ("/ingest/sentry", {}, fixture("sentry/legacy_webhook.json")),
        ("/ingest/github", {"X-GitHub-Event": "issues"}, fixture("github/issues_opened.json")),
        ("/ingest/github", {}, fixture("github/rest_issues_page1.json")),
        ("/ingest/manual", {}, {"text": "Export hangs at 99%", "title": "Export hangs"}),
        ("/ingest/feedback", {}, {"source": "datadog", "title": "p99 latency alert", "external_id": 7}),
    ]
    with running_pipeline(settings) as pipeline:
        async with httpx.AsyncClient(base_url=pipeline.api_url) as client:
            for path, headers, body in posts:
                response = await client.post(path, json=body, headers=headers)
                assert response.status_code == 202, response.text
        pipeline.wait_until_ingested()

    ingest_entries = await redis.xrange(keys.ingest_stream)
    assert {fields[IngestField.SOURCE] for _, fields in ingest_entries} == set(NORMALIZERS)
    for _, fields in ingest_entries:
        assert_ingest_entry_valid(fields)
    new_items = await redis.xrange(keys.new_item_stream)
    assert len(new_items) >= len(posts)
    for _, fields in new_items:
        assert_valid(contracts.NEW_ITEM_ENTRY, fields)
    assert await redis.xlen(keys.ingest_dlq) == 0


async def test_dead_letters_redrives_and_imports_validate(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    publisher = IngestPublisher(redis, keys, producer="contract-test")
    await publisher.publish(RawEvent.from_json("manual", {"text": "Dark mode resets on reload"}))
    await redis.xadd(keys.ingest_stream, {IngestField.VERSION: SCHEMA_VERSION, IngestField.SOURCE: "fax"})
    await publisher.publish(RawEvent.from_json("manual", {"title": "no text"}))
    consumer = build_ingest_consumer(settings, redis, keys)
    task = asyncio.create_task(consumer.run())
    try:
        await eventually(lambda: dead_letters_reach(redis, keys.ingest_dlq, 2))
    finally:
        consumer.stop()
        await task

    dead = await redis.xrange(keys.ingest_dlq)
    for _, fields in dead:
        assert_valid(contracts.DEAD_LETTER_ENTRY, fields)
    assert {fields[DeadLetterField.ERROR] for _, fields in dead} == {  # the examples docs/streams.md gives
        "InvalidPayload: no normalizer for source 'fax'",
        "InvalidPayload: text: Field required",
    }
    dead_letters = DeadLetters(redis, keys.ingest_stream, keys.ingest_dlq)
    redriven = await dead_letters.redrive_all()
    for entry_id in redriven.values():
        _, fields = (await redis.xrange(keys.ingest_stream, min=entry_id, max=entry_id))[0]
        if fields[IngestField.SOURCE] == "manual":  # the other one broke the contract and still does
            assert_valid(contracts.INGEST_ENTRY, fields)
            assert fields[ProvenanceField.REDRIVEN_FROM] in redriven

    exported = io.StringIO()
    first_id = (await redis.xrange(keys.ingest_stream, count=1))[0][0]
    await export_range(redis, keys.ingest_stream, exported, end=first_id)
    target = Keys("imported:")
    importer = publish_imported(ImportPublisher(redis, target, "import"), lambda event: event)
    assert await import_lines(exported.getvalue().splitlines(), importer) == 1
    (_, imported), *_ = await redis.xrange(target.ingest_stream)
    assert ProvenanceField.IMPORTED_FROM in imported
    assert_ingest_entry_valid(imported)


async def dead_letters_reach(redis: Redis, stream: str, count: int) -> bool:
    return bool(await redis.xlen(stream) >= count)


async def test_entries_the_sweeper_and_recluster_write_validate(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    publisher = IngestPublisher(redis, keys, producer="contract-test")
    await publisher.publish_many(
        [RawEvent.from_json("manual", {"text": f"Upload fails with code {n}"}) for n in range(3)]
    )
    await asyncio.to_thread(run_ingest_until_drained, settings)
    item_ids = await redis.smembers(keys.unclustered)
    await redis.delete(keys.new_item_stream)  # items waiting with no event: what the sweeper is for
    await redis.xgroup_create(keys.new_item_stream, CLUSTERER_GROUP, id="0", mkstream=True)

    assert (await Sweeper(redis, keys).sweep()).requeued == len(item_ids) == 3
    lock = RedisLock(redis, keys.cluster_lock, settings.cluster_lock_ttl_ms)
    await Reclusterer(redis, keys, lock).recluster_all()

    written = await redis.xrange(keys.new_item_stream)
    assert len(written) == 6
    for _, fields in written:
        assert_valid(contracts.NEW_ITEM_ENTRY, fields)
        assert fields[NewItemField.ID] in item_ids


def run_ingest_until_drained(settings: Settings) -> None:
    with running_pipeline(settings, api=False) as pipeline:
        pipeline.wait_until_ingested()


# --- what "required" means: an entry without a required field is dead-lettered, without another is not --


async def test_required_ingest_fields_are_the_ones_the_worker_needs(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    from services.ingest.outcomes import read_outcome

    schema = contracts.load_schema(contracts.INGEST_ENTRY)
    sample = {
        IngestField.VERSION: SCHEMA_VERSION,
        IngestField.SOURCE: "manual",
        IngestField.PAYLOAD: json.dumps({"text": "Search ignores accents"}),
        IngestField.RECEIVED_AT: "2026-12-01T10:00:00+00:00",
        IngestField.ITEM_ID: "3d0e6f0a-5b1c-4e7d-9a2f-8c4b1e6d7f20",  # its schema says: a uuid
    }
    without: dict[str, str] = {}
    for missing in names(IngestField):
        # A field added later (an idempotency key) gets a value of its own in each entry.
        entry = {name: sample.get(name, f"{name}-without-{missing}") for name in names(IngestField)}
        del entry[missing]
        without[missing] = await redis.xadd(keys.ingest_stream, entry)
    await asyncio.to_thread(run_ingest_until_drained, settings)

    for missing, entry_id in without.items():
        outcome = await read_outcome(redis, keys, entry_id)
        assert outcome is not None
        expected = "dead_lettered" if missing in schema["required"] else "created"
        assert outcome["status"] == expected, (missing, outcome)
