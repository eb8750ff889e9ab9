"""Error events are grouped exactly (by fingerprint) before embeddings are consulted."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from services.clusterer.consolidation import build_consolidator
from services.clusterer.worker import build_clusterer_consumer
from shared.keys import SCHEMA_VERSION, Keys, NewItemField
from shared.models import FeedbackItem, item_id_for
from shared.settings import Settings
from tests.clusterer.test_clusterer_worker import drained
from tests.support.cluster_invariants import assert_each_item_in_one_cluster
from tests.support.waiting import run_consumers


async def seed_error(redis: Redis, keys: Keys, title: str, fingerprint: list[str]) -> str:
    item_id = item_id_for("sentry", title, "")
    item = FeedbackItem(
        id=item_id,
        source="sentry",
        title=title,
        created_at=datetime.now(UTC),
        metadata={"fingerprint": fingerprint},
    )
    await redis.hset(keys.feedback(item_id), mapping=item.to_hash())  # type: ignore[arg-type]
    await redis.sadd(keys.unclustered, item_id)
    event = {NewItemField.VERSION: SCHEMA_VERSION, NewItemField.ID: item_id, NewItemField.SOURCE: "sentry"}
    await redis.xadd(keys.new_item_stream, event)  # type: ignore[arg-type]
    return item_id


async def test_same_fingerprint_joins_one_cluster_across_batches_whatever_the_text(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    one_at_a_time = settings.model_copy(update={"clusterer_batch_size": 1})
    first = await seed_error(redis, keys, "TimeoutError: payment gateway did not answer", ["payments-down"])
    unrelated = await seed_error(redis, keys, "KeyError: 'avatar' in profile renderer", ["profile"])
    await run_consumers([build_clusterer_consumer(one_at_a_time, redis, keys)], lambda: drained(redis, keys))
    later = await seed_error(redis, keys, "ConnectionResetError while charging card", ["payments-down"])
    await run_consumers([build_clusterer_consumer(one_at_a_time, redis, keys)], lambda: drained(redis, keys))
    await build_consolidator(one_at_a_time, redis, keys).run()

    members = await assert_each_item_in_one_cluster(redis, keys, [first, unrelated, later])
    assert sorted(sorted(m) for m in members.values()) == sorted([sorted([first, later]), [unrelated]])
