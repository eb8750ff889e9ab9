"""What a real 3-master Redis Cluster accepts and refuses: the constraints cluster mode (issue 13) must meet.

Nothing in the product runs on a cluster yet; these tests pin down, on real servers, the rules the
plan in docs/scaling.md is built on: every key a script touches is declared and shares one hash tag,
one XREADGROUP reads one partition, and a brace inside an id picks the slot unless the tag comes first.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, ResponseError

from services.dev import local_cluster
from services.dev.local_redis import free_port
from shared.settings import Settings
from tests.support.redis_cluster import ClusterNode, LocalRedisCluster

# A cluster of three real servers takes seconds to form.
pytestmark = pytest.mark.slow

WRITE_ITEM = """
redis.call('HSET', KEYS[1], 'title', ARGV[2])
redis.call('ZADD', KEYS[2], 1, ARGV[1])
redis.call('SET', KEYS[3], ARGV[1])
return redis.call('XADD', KEYS[4], '*', 'id', ARGV[1])
"""
WRITE_UNDECLARED = "redis.call('SET', KEYS[1], 1); return redis.call('SET', ARGV[1], 1)"


@pytest.fixture
async def client(cluster: LocalRedisCluster) -> AsyncIterator[RedisCluster]:
    connection = RedisCluster.from_url(cluster.url, decode_responses=True)
    await connection.initialize()
    cluster.flush()
    try:
        yield connection
    finally:
        await connection.aclose()


def owner(cluster: LocalRedisCluster, key: str) -> ClusterNode:
    """The master serving `key`'s slot, read from the cluster's own slot table."""
    slot = key_slot(key.encode())
    with cluster.nodes[0].client() as plain:
        ranges = plain.execute_command("CLUSTER SLOTS")
    port = next(int(hosts[1]) for first, last, hosts, *_ in ranges if first <= slot <= last)
    return next(node for node in cluster.nodes if node.port == port)


def partition_tags_by_master(cluster: LocalRedisCluster) -> dict[int, str]:
    """The first partition tag `{pN}` served by each master (partitions are not spread evenly)."""
    tags: dict[int, str] = {}
    for number in range(64):
        tag = f"{{p{number}}}"
        tags.setdefault(owner(cluster, tag).port, tag)
    return tags


def test_the_cluster_has_three_masters_sharing_every_slot(cluster: LocalRedisCluster) -> None:
    for node in cluster.nodes:
        info = node.info()
        assert info is not None
        assert info["cluster_state"] == "ok"
        assert info["cluster_size"] == "3"
        assert info["cluster_slots_assigned"] == "16384"


async def test_keys_tagged_per_partition_land_on_every_master(
    cluster: LocalRedisCluster, client: RedisCluster
) -> None:
    tags = partition_tags_by_master(cluster)
    assert len(tags) == 3
    for tag in tags.values():
        await client.set(f"{tag}:feedback:created", tag)
    for node in cluster.nodes:
        with node.client() as plain:
            assert plain.keys("*") == [f"{tags[node.port]}:feedback:created"]
        assert await client.get(f"{tags[node.port]}:feedback:created") == tags[node.port]


async def test_a_script_whose_keys_share_a_hash_tag_runs_on_the_cluster(client: RedisCluster) -> None:
    keys = ["{p0}:feedback:item-1", "{p0}:feedback:created", "{p0}:feedback:external:reddit:t3_x"]
    stream = "{p0}:stream:feedback:new"

    entry_id = await client.eval(WRITE_ITEM, 4, *keys, stream, "item-1", "a title")  # type: ignore[misc]

    assert await client.hget(keys[0], "title") == "a title"
    assert await client.zscore(keys[1], "item-1") == 1
    assert await client.get(keys[2]) == "item-1"
    assert await client.xrange(stream) == [(entry_id, {"id": "item-1"})]


async def test_a_script_whose_keys_span_slots_is_refused_with_crossslot(
    cluster: LocalRedisCluster, client: RedisCluster
) -> None:
    """Today's key names carry no tag: `feedback:created` and an item's hash sit in different slots."""
    keys = ["feedback:item-1", "feedback:created", "feedback:external:reddit:t3_x", "stream:feedback:new"]
    assert len({key_slot(key.encode()) for key in keys}) > 1

    with pytest.raises(RedisClusterException, match="same key slot"):
        await client.eval(WRITE_ITEM, 4, *keys, "item-1", "a title")  # type: ignore[misc]
    with owner(cluster, keys[0]).client() as plain, pytest.raises(ResponseError, match="same slot"):
        plain.eval(WRITE_ITEM, 4, *keys, "item-1", "a title")  # the server's own CROSSSLOT
    for key in keys:
        assert await client.exists(key) == 0


def test_a_script_that_builds_a_key_of_another_node_fails_halfway(cluster: LocalRedisCluster) -> None:
    """apply_events.lua builds item keys from a prefix in ARGV: on a cluster each must be in KEYS.

    Redis refuses the undeclared key only when its slot is on another node, and does not roll back
    the calls made before it: the script's atomicity is lost, not just the call.
    """
    tags = list(partition_tags_by_master(cluster).values())
    here, elsewhere = f"{tags[0]}:declared", f"{tags[1]}:undeclared"
    with owner(cluster, here).client() as plain:
        with pytest.raises(ResponseError, match="non local key"):
            plain.eval(WRITE_UNDECLARED, 1, here, elsewhere)
        assert plain.get(here) == "1"
    with owner(cluster, elsewhere).client() as plain:
        assert plain.exists(elsewhere) == 0


def test_a_brace_in_an_id_picks_the_slot_unless_the_partition_tag_comes_first(
    cluster: LocalRedisCluster,
) -> None:
    """Only the first {...} counts: an external id like `{abc}` would steer today's dedupe key."""
    with cluster.nodes[0].client() as plain:
        untagged = plain.execute_command("CLUSTER KEYSLOT", "feedback:external:sentry:{abc}")
        tagged = plain.execute_command("CLUSTER KEYSLOT", "{p0}:feedback:external:sentry:{abc}")
        assert untagged == plain.execute_command("CLUSTER KEYSLOT", "abc")
        assert tagged == plain.execute_command("CLUSTER KEYSLOT", "{p0}")


async def test_a_consumer_group_on_a_tagged_stream_reads_and_acks(client: RedisCluster) -> None:
    stream = "{p0}:stream:ingest"
    await client.xgroup_create(stream, "ingest", id="0", mkstream=True)
    sent = [await client.xadd(stream, {"source": "manual", "payload": str(n)}) for n in range(3)]

    read = await client.xreadgroup("ingest", "worker-1", {stream: ">"}, count=10)

    assert [entry_id for entry_id, _ in read[0][1]] == sent
    assert await client.xack(stream, "ingest", *sent) == 3
    assert (await client.xpending(stream, "ingest"))["pending"] == 0


async def test_one_xreadgroup_cannot_read_two_partitions(
    cluster: LocalRedisCluster, client: RedisCluster
) -> None:
    """So a worker that consumes several partitions issues one read per partition."""
    tags = list(partition_tags_by_master(cluster).values())
    streams = {f"{tag}:stream:ingest": ">" for tag in tags[:2]}
    for stream in streams:
        await client.xgroup_create(stream, "ingest", id="0", mkstream=True)
        await client.xadd(stream, {"payload": "x"})

    with pytest.raises(RedisClusterException, match="same key slot"):
        await client.xreadgroup("ingest", "worker-1", streams)  # type: ignore[arg-type]
    with owner(cluster, tags[0]).client() as plain, pytest.raises(ResponseError, match="same slot"):
        plain.xreadgroup("ingest", "worker-1", streams)  # type: ignore[arg-type]
    for stream in streams:
        read = await client.xreadgroup("ingest", "worker-1", {stream: ">"})
        assert len(read[0][1]) == 1


@pytest.mark.parametrize("masters", [1, 2])
def test_fewer_than_three_masters_form_a_cluster_that_serves_every_slot(tmp_path: Path, masters: int) -> None:
    """`redis-cli --cluster create` refuses fewer than 3 masters; the benches need 1 and 2."""
    local = LocalRedisCluster(tmp_path, masters=masters).start()
    try:
        for node in local.nodes:
            info = node.info()
            assert info is not None
            assert info["cluster_state"] == "ok"
            assert info["cluster_size"] == str(masters)
            assert info["cluster_slots_assigned"] == "16384"
    finally:
        local.stop()


@pytest.mark.parametrize("masters", [1, 2, 3])
def test_partitions_a_multiple_of_the_masters_spread_evenly(tmp_path: Path, masters: int) -> None:
    """The launcher splits slots as partition tags do: 6 partitions put 6 / M streams on each master."""
    local = LocalRedisCluster(tmp_path, masters=masters).start()
    keys = Settings(redis_cluster=True, ingest_partitions=6).keys()
    try:
        streams = [view.ingest_stream for view in keys.partitions]
        served = [owner(local, stream).port for stream in streams]
        assert sorted(served.count(node.port) for node in local.nodes) == [6 // masters] * masters
        assert [local.node_for(stream).port for stream in streams] == served
    finally:
        local.stop()


def test_stopping_the_cluster_ends_every_node(tmp_path: Path) -> None:
    local = LocalRedisCluster(tmp_path, masters=3).start()
    ports = [node.port for node in local.nodes]
    local.stop()
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_a_port_taken_before_a_node_binds_it_is_retried_on_new_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Other processes on the machine grab ports too: the launcher must not fail on such a race."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        handed = iter([taken_port])
        monkeypatch.setattr(local_cluster, "free_port", lambda: next(handed, None) or free_port())

        local = LocalRedisCluster(tmp_path).start()
        try:
            assert taken_port not in [node.port for node in local.nodes]
            assert all(
                info is not None and info["cluster_state"] == "ok"
                for info in map(ClusterNode.info, local.nodes)
            )
        finally:
            local.stop()
