"""Splitting a producer's payloads into request bodies the ingest API will take in one go.

The API refuses bodies over `MAX_BODY_BYTES` and batches over `MAX_BATCH_ITEMS` with a 413/400, and
a refused batch would be refused again on every retry; so the split happens before sending.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

JSON_ARRAY_OVERHEAD = 2


def json_batches(items: Sequence[Any], max_items: int, max_bytes: int) -> Iterator[list[Any]]:
    """Consecutive batches; an item larger than `max_bytes` on its own goes alone (the API judges it)."""
    batch: list[Any] = []
    size = JSON_ARRAY_OVERHEAD
    for item in items:
        item_size = len(json.dumps(item, separators=(",", ":")).encode()) + 1
        if batch and (len(batch) >= max_items or size + item_size > max_bytes):
            yield batch
            batch, size = [], JSON_ARRAY_OVERHEAD
        batch.append(item)
        size += item_size
    if batch:
        yield batch
