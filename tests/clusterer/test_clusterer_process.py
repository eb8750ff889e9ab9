"""`soulcaster clusterer` as real processes: one killed with SIGKILL mid-run, its work finished by another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from redis.asyncio import Redis

from services.dev.stand_ins.feedback_seed import seed_items, topic_titles
from shared.keys import Keys
from tests.support.cluster_invariants import assert_each_item_in_one_cluster
from tests.support.drained import drained
from tests.support.waiting import eventually

SOULCASTER = str(Path(sys.executable).with_name("soulcaster"))


def start_clusterer(redis_url: str, name: str, **extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "CONSUMER_NAME": name,
        "EMBEDDER": "hashing",
        "CLUSTERER_BATCH_SIZE": "4",
        "READ_BLOCK_MS": "100",
        "VISIBILITY_TIMEOUT_MS": "300",
        "RECLAIM_INTERVAL_MS": "100",
        "HEALTH_PORT": "0",
        "CLUSTER_LOCK_TTL_MS": "2000",
        **extra,
    }
    return subprocess.Popen(
        [SOULCASTER, "clusterer"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def test_sigkilled_clusterer_leaves_nothing_half_done(redis: Redis, keys: Keys, redis_url: str) -> None:
    titles = [f"{title} (report {n})" for n in range(20) for title in topic_titles()]
    ids = await seed_items(redis, keys, titles)
    first = start_clusterer(redis_url, "doomed")
    try:

        async def some_clustered() -> bool:
            return int(await redis.scard(keys.unclustered)) < len(ids) - 20

        await eventually(some_clustered)
        first.send_signal(signal.SIGKILL)
        first.wait()
    finally:
        first.kill()
    assert await redis.scard(keys.unclustered) > 0, "killed too late to prove anything"

    survivor = start_clusterer(redis_url, "survivor")
    try:
        await eventually(lambda: drained(redis, keys))
    finally:
        survivor.terminate()
        survivor.wait(timeout=30)
    members = await assert_each_item_in_one_cluster(redis, keys, ids)
    assert len(members) == 3


async def test_a_running_clusterer_consolidates_by_itself_once_items_stop_coming(
    redis: Redis, keys: Keys, redis_url: str
) -> None:
    """Online votes at 0.99 leave every item alone; only the clusterer's debounced pass can end in
    one cluster per topic."""
    ids = await seed_items(redis, keys, topic_titles())
    process = start_clusterer(
        redis_url,
        "passing",
        CLUSTER_SIMILARITY_THRESHOLD="0.99",
        CLUSTER_RESOLUTION="1",
        CLUSTER_PASS_DEBOUNCE_SECONDS="0.2",
    )

    async def consolidated() -> bool:
        return await drained(redis, keys) and await redis.scard(keys.clusters_all) == 3

    try:
        await eventually(consolidated)
    finally:
        process.terminate()
        process.wait(timeout=30)
    members = await assert_each_item_in_one_cluster(redis, keys, ids)
    assert sorted(len(m) for m in members.values()) == [5, 5, 5]
