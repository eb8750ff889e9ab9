"""Which partition an item belongs to, and the hash tag that keeps a partition's keys in one slot.

Redis Cluster runs a script only when all its keys hash to one slot, and hashes only the text of
the first `{...}` in a key. Every key the ingest script touches for an item therefore carries its
partition's tag, and the partition follows from the item id alone, so any process finds an item's
keys without a lookup. The item id is `uuid5(source:external_id)` (shared/models.py): a second event
about the same external item lands in the same partition, and dedupe stays one atomic step.

Tags are chosen for their slot, not named `p0`, `p1`, ...: `redis-cli --cluster create` gives each
master an equal range of slots, and partition `i` of `N` gets a tag in the `i`-th of `N` equal ranges,
so `N / masters` partitions land on each master when `N` is a multiple of the masters (naive names
leave a master idle: docs/scaling.md).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

MAX_PARTITIONS = 1024


@lru_cache(maxsize=MAX_PARTITIONS * 4)
def partition_tag(partition: int, count: int) -> str:
    """The first short tag `p<partition>.<k>` whose slot lies in the partition's share of slots."""
    low = partition * REDIS_CLUSTER_HASH_SLOTS // count
    high = (partition + 1) * REDIS_CLUSTER_HASH_SLOTS // count
    k = 0
    while not low <= key_slot(f"p{partition}.{k}".encode()) < high:
        k += 1
    return f"p{partition}.{k}"


@dataclass(frozen=True)
class Partitioning:
    """`count` partitions of the per-item keys and streams; `tagged` when their names carry tags.

    Tags appear in cluster mode or with more than one partition. One untagged partition is the
    single-node default: every key keeps the name the dashboard has always read.
    """

    count: int = 1
    tagged: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_PARTITIONS:
            raise ValueError(f"partitions must be 1 to {MAX_PARTITIONS}, not {self.count}")
        if self.count > 1 and not self.tagged:
            raise ValueError("several partitions need tagged key names")

    def of(self, item_id: str) -> int:
        """The item's partition: crc32 spreads uuids evenly and costs well under a microsecond."""
        return zlib.crc32(item_id.encode()) % self.count if self.count > 1 else 0

    def tag(self, partition: int) -> str:
        """The partition's hash tag, "" when names are untagged."""
        if not 0 <= partition < self.count:
            raise ValueError(f"partition {partition} is not one of 0..{self.count - 1}")
        return partition_tag(partition, self.count) if self.tagged else ""

    @property
    def all(self) -> range:
        return range(self.count)

    def event_id(self, partition: int, entry_id: str) -> str:
        """The id a producer gets for an event: its entry id, qualified by its partition when there
        are several, because entry ids are unique only within one stream (the streams of one batch
        all start their ids at the same millisecond)."""
        return f"{partition}:{entry_id}" if self.count > 1 else entry_id

    def locate_event(self, event_id: str) -> tuple[int | None, str]:
        """`(partition, entry id)` of an event id; the partition is None for a bare entry id."""
        partition, colon, entry_id = event_id.rpartition(":")
        return (int(partition), entry_id) if colon else (None, entry_id)


SINGLE_NODE = Partitioning()


def parse_partition_set(text: str, count: int) -> list[int]:
    """`INGEST_PARTITIONS_OWNED`: "" (every partition) or ranges such as "0-3,7", sorted."""
    if not text.strip():
        return list(range(count))
    owned: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a partition or a range like 0-3") from None
        if not 0 <= first <= last < count:
            raise ValueError(f"partitions {part.strip()!r} are not within 0..{count - 1}")
        owned.update(range(first, last + 1))
    return sorted(owned)
