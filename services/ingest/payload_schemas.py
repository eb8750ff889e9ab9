"""The JSON Schema of each source's payload, generated from the shapes its normalizer parses.

The files this writes (`shared/contracts/payload-{source}.schema.json`) are part of the public
streams contract; a test fails when they differ from what is generated here, so the published
schema can never describe a payload the normalizer would treat differently. After changing a
normalizer's shape, regenerate them: `python -m services.ingest.payload_schemas`.

A schema says what the shape accepts as far as JSON Schema can: rules written in code (a Sentry
payload needs an issue id, short id or event id; a feedback payload a non-blank title or body) are
stated in each normalizer and in docs/streams.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from services.ingest.normalizers.feedback import FEEDBACK_PAYLOAD
from services.ingest.normalizers.github import GITHUB_PAYLOAD
from services.ingest.normalizers.manual import MANUAL_PAYLOAD
from services.ingest.normalizers.reddit import REDDIT_POST
from services.ingest.normalizers.sentry import SENTRY_PAYLOAD
from shared import contracts

DIALECT = "https://json-schema.org/draft/2020-12/schema"

PAYLOAD_SHAPES: Mapping[str, TypeAdapter[Any]] = MappingProxyType(
    {
        "reddit": REDDIT_POST,
        "sentry": SENTRY_PAYLOAD,
        "github": GITHUB_PAYLOAD,
        "manual": MANUAL_PAYLOAD,
        "feedback": FEEDBACK_PAYLOAD,
    }
)


class PayloadJsonSchema(GenerateJsonSchema):
    """Pydantic's schemas, corrected where its lax validation of parsed JSON accepts more: a datetime
    may also arrive as seconds since the epoch (Sentry's legacy `received`, Reddit's `created_utc`)."""

    def datetime_schema(self, schema: core_schema.DatetimeSchema) -> JsonSchemaValue:
        return {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}


def payload_schema(source: str) -> dict[str, Any]:
    """The schema of one source's payload as pydantic describes its shape (validation mode).

    A shape that tells its variants apart by a function comes out as `oneOf`; it is published as
    `anyOf`, because the normalizer picks the variant by the payload's shape and a payload may also
    satisfy another variant's looser constraints (a legacy Sentry payload requires no field at all).
    """
    schema = PAYLOAD_SHAPES[source].json_schema(schema_generator=PayloadJsonSchema)
    if "oneOf" in schema:
        schema["anyOf"] = schema.pop("oneOf")
    return {"$schema": DIALECT, **schema, "title": f"{source} payload"}


def rendered(source: str) -> str:
    """The file's text: stable key order and indentation so a regeneration diffs cleanly."""
    return json.dumps(payload_schema(source), indent=2, ensure_ascii=False) + "\n"


def write_all(directory: Path) -> list[Path]:
    written = []
    for source in PAYLOAD_SHAPES:
        path = directory / f"{contracts.payload_kind(source)}.schema.json"
        path.write_text(rendered(source), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all(Path(contracts.__file__).parent):
        print(path)
