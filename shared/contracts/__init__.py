"""The streams' machine-readable contract: an AsyncAPI 3.0 document (`asyncapi.yaml`) and one JSON
Schema (draft 2020-12) per entry kind and per source payload, shipped with the package.

They are the public contract docs/streams.md explains; tests hold the code to them (field names,
schema version, what the real writers put in the streams), so the document cannot drift.
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

ASYNCAPI_DOCUMENT = "asyncapi.yaml"
INGEST_ENTRY = "ingest-entry"
NEW_ITEM_ENTRY = "new-item-entry"
DEAD_LETTER_ENTRY = "dead-letter-entry"


def contract_file(name: str) -> Traversable:
    return files(__name__).joinpath(name)


def schema_file(kind: str) -> Traversable:
    """`ingest-entry` -> `ingest-entry.schema.json`."""
    return contract_file(f"{kind}.schema.json")


def payload_kind(source: str) -> str:
    """The schema kind of the payload a `stream:ingest` entry of `source` carries."""
    return f"payload-{source}"


def load_schema(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(schema_file(kind).read_text(encoding="utf-8"))
    return schema
