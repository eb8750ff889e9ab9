"""The contract every vector index meets, so assignment code never depends on one store.

Scores are RAW cosine similarity in [-1, 1] whatever the backend reports (Upstash returns
`(1 + cos) / 2`; its adapter converts), so one threshold means the same thing on every index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class VectorRecord:
    """One item's vector and the cluster it was assigned to (the metadata a query returns)."""

    id: str
    vector: np.ndarray
    cluster_id: str


@dataclass(frozen=True)
class Match:
    """A neighbour found by `query`: its item id, raw cosine to the query vector, and its cluster."""

    id: str
    score: float
    cluster_id: str


class VectorIndex(Protocol):
    """Upsert and nearest-neighbour search by item id, one index per embedder.

    Both calls are batched (one round trip per batch, not per item) because the clusterer holds
    its assignment lock while it calls them. Upserting an existing id replaces its vector and
    cluster_id, which keeps retries idempotent. An index may be eventually consistent: the
    clusterer compares the items of one batch with each other itself.
    """

    async def upsert(self, records: Sequence[VectorRecord]) -> None: ...

    async def query(self, vectors: np.ndarray, top_k: int) -> list[list[Match]]:
        """For each row of `vectors` (float32, (n, d), L2-normalised), up to `top_k` matches,
        best first; an empty index gives empty lists."""
        ...

    async def reassign(self, ids: Sequence[str], cluster_id: str) -> None:
        """Point existing vectors at another cluster without re-sending them."""
        ...

    async def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of `ids` (missing ids are left out): a consolidation pass rebuilds
        the centroids of the clusters it changes from them."""
        ...
