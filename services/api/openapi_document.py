"""The OpenAPI document, with the request bodies of the routes that read their body raw.

The producer endpoints read raw bytes (a webhook signature covers exactly those bytes), so FastAPI
cannot see their body models. Each such route declares its body with `raw_json_body(name, shape)`:
the schema comes from the very shape the route validates with, so the document cannot drift from
the validation, and generated clients send what the API accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

_REF = "#/components/schemas/{model}"
_RAW_BODIES: dict[str, TypeAdapter[Any]] = {}


def raw_json_body(name: str, shape: TypeAdapter[Any]) -> dict[str, Any]:
    """The route's `openapi_extra`: a required JSON body described by `shape`, under `name`."""
    _RAW_BODIES[name] = shape
    schema = {"$ref": _REF.format(model=name)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def openapi_builder(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """What `app.openapi` should be: FastAPI's document plus the raw bodies' schemas, built once."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            built = get_openapi(title=app.title, version=app.version, routes=app.routes)
            schemas = built.setdefault("components", {}).setdefault("schemas", {})
            for name, shape in _RAW_BODIES.items():
                schema = shape.json_schema(ref_template=_REF)
                schemas.update(schema.pop("$defs", {}))
                schemas[name] = schema
            app.openapi_schema = built
        return app.openapi_schema

    return document
