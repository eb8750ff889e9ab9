"""What `soulcaster dev` shows a first-time user: its cluster table, and clusters that make sense."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from services.clusterer.worker import build_clusterer_consumer
from services.dev.local_redis import free_port
from services.dev.run import DEV_PREFIX, report, run_dev
from services.dev.stand_ins.feedback_seed import seed_items, topic_titles
from shared.clusters import ClusterField, list_cluster_ids
from shared.keys import Keys
from shared.models import FeedbackItem
from shared.settings import Settings
from tests.clusterer.test_clusterer_worker import drained
from tests.support.waiting import run_consumers


async def test_the_cluster_table_shows_each_clusters_keywords(
    settings: Settings, redis: Redis, keys: Keys
) -> None:
    await seed_items(redis, keys, topic_titles())
    await run_consumers([build_clusterer_consumer(settings, redis, keys)], lambda: drained(redis, keys))
    labelled, unlabelled, *_ = await list_cluster_ids(redis, keys, "largest", 0, 10)
    await redis.hset(keys.cluster(labelled), ClusterField.KEYWORDS, json.dumps(["csv", "export", "empty"]))
    await redis.hdel(keys.cluster(unlabelled), ClusterField.KEYWORDS)

    table = (await report(redis, keys)).split("Clusters (")[1].split("Streams:")[0]
    header, *rows = [line for line in table.splitlines()[1:] if line.strip()]
    assert header.split() == ["size", "sources", "keywords", "title"]
    assert sum("csv, export, empty" in row for row in rows) == 1
    assert sum(" - " in row for row in rows) == len(rows) - 1  # no keywords yet: a dash


async def stored_items(redis: Redis, keys: Keys) -> list[FeedbackItem]:
    ids = await redis.zrange(keys.feedback_created, 0, -1)
    return [FeedbackItem.from_hash(await redis.hgetall(keys.feedback(item_id))) for item_id in ids]


async def test_the_sso_safari_report_lands_with_the_safari_login_loops(
    settings: Settings, redis: Redis
) -> None:
    """The issue's check on the default embedder: the sample's GitHub issue "SSO login redirect loop
    in Safari 17" joins the Reddit and manual reports of a Safari login loop."""
    dev = settings.model_copy(
        update={
            "embedder": "minilm",
            "key_prefix": DEV_PREFIX,
            "api_port": free_port(),
            "ingest_api_keys": [],
        }
    )
    await run_dev(dev, fresh=True, serve=False, use_reddit=False)

    clusters = {item.title: item.cluster_id for item in await stored_items(redis, Keys(DEV_PREFIX))}
    sso = clusters["SSO login redirect loop in Safari 17"]
    assert sso is not None
    assert clusters["Stuck in a login loop on Safari"] == sso
    assert clusters["I can't log in using Safari, it keeps sending me back to the sign in screen."] == sso


async def test_dev_on_three_partitions_clusters_every_sample_item(settings: Settings, redis: Redis) -> None:
    """`INGEST_PARTITIONS=3 soulcaster dev`: a consumer per partition of each group, every item clustered."""
    dev = settings.model_copy(
        update={
            "ingest_partitions": 3,
            "key_prefix": DEV_PREFIX,
            "api_port": free_port(),
            "ingest_api_keys": [],
        }
    )
    await run_dev(dev, fresh=True, serve=False, use_reddit=False)

    keys = dev.keys()
    per_partition = [await redis.zcard(view.feedback_created) for view in keys.partitions]
    assert min(per_partition) > 0, per_partition
    assert [await redis.scard(view.unclustered) for view in keys.partitions] == [0, 0, 0]
    for view in keys.partitions:
        for item_id in await redis.zrange(view.feedback_created, 0, -1):
            assert await redis.hget(keys.feedback(item_id), "clustered") == "true"
