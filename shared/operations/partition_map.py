"""`soulcaster partitions`: where each partition lives, so an operator moves whole partitions.

A partition's keys share one hash tag, hence one slot: resharding that slot moves the partition
(its streams, items and indexes) at once, and moving part of a partition is impossible. The table
gives partition -> tag -> slot -> node (from `CLUSTER SHARDS`, or `CLUSTER SLOTS` before Redis 7,
with the node id `redis-cli --cluster reshard` asks for) -> its two streams' lengths, then the
partitions and entries per node, so an uneven spread shows at a glance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ResponseError

from shared.keys import Keys
from shared.redis_connection import is_cluster

SINGLE_NODE = "single node"


@dataclass(frozen=True)
class Owner:
    """The master serving a slot range."""

    address: str
    node_id: str


@dataclass(frozen=True)
class PartitionPlace:
    partition: int
    tag: str
    slot: int | None
    owner: Owner
    ingest_length: int
    new_item_length: int


async def slot_owners(redis: Redis) -> dict[tuple[int, int], Owner]:
    """Slot range -> its master, asked of the cluster (SHARDS names node ids; SLOTS is older)."""
    try:
        shards: list[dict[str, Any]] = await redis.cluster_shards()  # type: ignore[no-untyped-call]
    except ResponseError:
        slots: Mapping[tuple[int, int], dict[str, Any]] = await redis.cluster_slots()  # type: ignore[no-untyped-call]
        return {span: Owner("{}:{}".format(*owner["primary"]), "-") for span, owner in slots.items()}
    owners: dict[tuple[int, int], Owner] = {}
    for shard in shards:
        master = next(node for node in shard["nodes"] if node["role"] == "master")
        ranges = shard["slots"]
        for low, high in zip(ranges[::2], ranges[1::2], strict=True):
            owners[(int(low), int(high))] = Owner(f"{master['endpoint']}:{master['port']}", str(master["id"]))
    return owners


def owner_of(slot: int, owners: Mapping[tuple[int, int], Owner]) -> Owner:
    return next((o for (low, high), o in owners.items() if low <= slot <= high), Owner("unassigned", "-"))


async def partition_places(redis: Redis, keys: Keys) -> list[PartitionPlace]:
    """Every partition: one pipeline of XLENs, plus one CLUSTER SHARDS on a cluster."""
    cluster = is_cluster(redis)
    owners = await slot_owners(redis) if cluster else {}
    async with redis.pipeline(transaction=False) as pipe:
        for part in keys.partitions:
            pipe.xlen(part.ingest_stream)
            pipe.xlen(part.new_item_stream)
        lengths = [int(length) for length in await pipe.execute()]
    places = []
    for part in keys.partitions:
        tag = keys.partitioning.tag(part.index)
        slot = key_slot(tag.encode()) if tag else None
        owner = (
            owner_of(key_slot(part.ingest_stream.encode()), owners) if cluster else Owner(SINGLE_NODE, "-")
        )
        ingest, new = lengths[2 * part.index : 2 * part.index + 2]
        places.append(PartitionPlace(part.index, tag or "-", slot, owner, ingest, new))
    return places


def render_places(places: Sequence[PartitionPlace]) -> str:
    headers = ("partition", "tag", "slot", "node", "node id", "stream:ingest", "stream:feedback:new")
    table = [headers] + [
        (
            str(p.partition),
            p.tag,
            "-" if p.slot is None else str(p.slot),
            p.owner.address,
            p.owner.node_id,
            str(p.ingest_length),
            str(p.new_item_length),
        )
        for p in places
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table]
    by_node: dict[str, list[PartitionPlace]] = {}
    for place in places:
        by_node.setdefault(place.owner.address, []).append(place)
    lines.append("")
    for address, held in sorted(by_node.items()):
        lines.append(
            f"{address}: {len(held)} partitions ({', '.join(str(p.partition) for p in held)}), "
            f"{sum(p.ingest_length for p in held)} ingest entries, "
            f"{sum(p.new_item_length for p in held)} new-item entries"
        )
    lines.append(
        f"total: {len(places)} partitions, {sum(p.ingest_length for p in places)} ingest entries, "
        f"{sum(p.new_item_length for p in places)} new-item entries"
    )
    return "\n".join(lines)
