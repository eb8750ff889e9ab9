"""The state every clusterer run must end in, whatever was retried, killed or run in parallel, on
one partition or several (then `keys` spans them all)."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from shared.keys import Keys


async def cluster_membership(redis: Redis, keys: Keys) -> dict[str, set[str]]:
    """Cluster id -> member ids, after checking the cluster collections agree with each other."""
    cluster_ids = await redis.smembers(keys.clusters_all)
    by_size = dict(await redis.zrange(keys.clusters_by_size, 0, -1, withscores=True))
    by_created = await redis.zrange(keys.clusters_by_created, 0, -1)
    assert set(by_size) == cluster_ids == set(by_created)
    members = {}
    for cluster_id in cluster_ids:
        fields = await redis.hgetall(keys.cluster(cluster_id))
        members[cluster_id] = await redis.smembers(keys.cluster_items(cluster_id))
        assert fields["id"] == cluster_id and fields["status"] == "new" and fields["title"]
        assert int(fields["size"]) == len(members[cluster_id]) == by_size[cluster_id]
    return members


async def assert_each_item_in_one_cluster(
    redis: Redis, keys: Keys, item_ids: Sequence[str]
) -> dict[str, set[str]]:
    members = await cluster_membership(redis, keys)
    owner: dict[str, str] = {}
    for cluster_id, items in members.items():
        for item_id in items:
            assert item_id not in owner, f"{item_id} is in {owner.get(item_id)} and {cluster_id}"
            owner[item_id] = cluster_id
    assert set(owner) == set(item_ids)
    assert await redis.hgetall(keys.cluster_of) == owner, "the authority disagrees with the members"
    for item_id in item_ids:
        fields = await redis.hmget(keys.feedback(item_id), ["clustered", "cluster_id"])
        assert fields == ["true", owner[item_id]]
    for partition in keys.partitions:
        assert await redis.scard(partition.unclustered) == 0
    return members
