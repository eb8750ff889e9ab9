"""Parsing request JSON as strictly as the rest of the pipeline needs it, with a reason for each refusal.

Python's `json` module is lenient where the pipeline is not: it accepts `NaN` and `Infinity` (which
are not JSON), turns `1e400` into infinity, and keeps lone UTF-16 surrogates (`"\\ud800"`) that can
never be encoded as UTF-8 for Redis. Nesting is bounded too: a deeply nested value breaks the
worker's encoding and every later read. So the API refuses all of these before a byte is appended;
it does not repair them, because an event is stored exactly as it was received.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

Location = tuple[str | int, ...]
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = "text contains a lone UTF-16 surrogate, which is not valid Unicode"


class NotJson(ValueError):
    """The text is not JSON at all (a syntax error, `NaN`, not UTF-8): answered 400."""


class UnacceptableJson(ValueError):
    """Valid JSON the pipeline cannot carry (too deep, a lone surrogate, an infinite number): 422."""

    def __init__(self, location: Location, message: str) -> None:
        super().__init__(message)
        self.location = tuple(map(_printable, location))  # a key may hold the very surrogate refused
        self.message = message


def _refuse_constant(name: str) -> Any:
    raise NotJson(f"{name} is not a JSON value")


def loads(raw: bytes, max_depth: int) -> Any:
    """The parsed value, or `NotJson` / `UnacceptableJson` naming the problem and where it is."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise NotJson("request body is not UTF-8") from error
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise NotJson(f"request body is not valid JSON: {error}") from error
    except RecursionError as error:
        raise UnacceptableJson(("body",), _too_deep(max_depth)) from error
    # Valid UTF-8 cannot carry a surrogate: only a `\\uD800`-`\\uDFFF` escape can make one.
    check_carriable(data, max_depth, may_hold_surrogates=_SURROGATE_ESCAPE.search(raw) is not None)
    return data


def check_carriable(
    data: Any, max_depth: int, root: Location = ("body",), may_hold_surrogates: bool = True
) -> None:
    """Visits every value once, without recursion, so a hostile depth cannot exhaust the stack here.

    Each node remembers its parent and key, so a location is built only for the one refused.
    """
    nodes: list[tuple[Any, int, int, str | int]] = [(data, 0, -1, "")]
    index = 0
    while index < len(nodes):
        value, depth, _, _ = nodes[index]
        if depth > max_depth:
            raise UnacceptableJson(_location(nodes, index, root), _too_deep(max_depth))
        if isinstance(value, dict):
            for key, child in value.items():
                if may_hold_surrogates and not _encodable(key):
                    raise UnacceptableJson((*_location(nodes, index, root), key), _LONE_SURROGATE)
                nodes.append((child, depth + 1, index, key))
        elif isinstance(value, list):
            nodes.extend((child, depth + 1, index, position) for position, child in enumerate(value))
        elif isinstance(value, str):
            if may_hold_surrogates and not _encodable(value):
                raise UnacceptableJson(_location(nodes, index, root), _LONE_SURROGATE)
        elif isinstance(value, float) and not math.isfinite(value):
            raise UnacceptableJson(_location(nodes, index, root), "number is too large to represent")
        index += 1


def _location(nodes: list[tuple[Any, int, int, str | int]], index: int, root: Location) -> Location:
    path: list[str | int] = []
    while index > 0:
        _, _, parent, key = nodes[index]
        path.append(key)
        index = parent
    return (*root, *reversed(path))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(part: str | int) -> str | int:
    """A key as the answer can show it: a lone surrogate written out as `\\udfff`."""
    return part.encode("utf-8", "backslashreplace").decode("utf-8") if isinstance(part, str) else part


def _too_deep(max_depth: int) -> str:
    return f"JSON nested deeper than {max_depth} levels (MAX_JSON_DEPTH)"
