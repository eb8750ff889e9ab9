"""Per-kind thresholds: machine text (Sentry, logs) and natural language cluster apart, each with
its own profile, and the exactly-once guarantees hold for a mix of both."""

from __future__ import annotations

import numpy as np
from redis.asyncio import Redis

from services.clusterer.assignment import BatchItem, ClusterState, assign, seed_cluster
from services.clusterer.consolidation import build_consolidator
from services.clusterer.thresholds import DEFAULTS, Profiles, TextKind, Thresholds, profiles_for
from services.clusterer.vector_index.base import Match
from services.clusterer.worker import build_clusterer_consumer
from services.dev.stand_ins.feedback_seed import seed_items, topic_titles
from shared.keys import Keys
from shared.settings import Settings
from tests.clusterer.test_clusterer_worker import drained, snapshot
from tests.support.cluster_invariants import assert_each_item_in_one_cluster
from tests.support.waiting import run_consumers

PROFILES = Profiles(
    natural=Thresholds(join=0.70, resolution=5.0),
    machine=Thresholds(join=0.80, merge=0.8),
    machine_sources=frozenset({"sentry", "datadog"}),
)


def test_cluster_kind_is_machine_only_when_every_source_is() -> None:
    assert PROFILES.kind_of(["sentry"]) is TextKind.MACHINE
    assert PROFILES.kind_of({"sentry": 3, "datadog": 1}) is TextKind.MACHINE
    assert PROFILES.kind_of(["reddit"]) is TextKind.NATURAL
    assert PROFILES.kind_of({"sentry": 2, "github": 1}) is TextKind.NATURAL  # mixed: clustered before
    assert PROFILES.of(TextKind.MACHINE).join == 0.80


def test_settings_name_the_machine_sources_and_override_the_machine_profile() -> None:
    profiles = profiles_for(
        Settings(
            embedder="minilm",
            cluster_machine_sources="sentry, datadog",  # type: ignore[arg-type]  # the env form
            cluster_machine_merge_threshold=0.9,
        )
    )
    assert profiles.machine_sources == {"sentry", "datadog"}
    assert profiles.machine == Thresholds(join=0.85, merge=0.9)
    assert profiles.natural == Thresholds(join=0.80, resolution=DEFAULTS["minilm"].resolution)
    assert profiles_for(Settings()).machine_sources == {"sentry"}


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float64)
    return vector / np.linalg.norm(vector)


def assign_one(
    source: str, vector: np.ndarray, known: dict[str, ClusterState], profiles: Profiles = PROFILES
) -> str:
    """The neighbour is the cluster's only member, at the cosine of `vector` to its centroid."""
    neighbours = [
        [Match(s.central_item, float(s.similarity(vector[None, :])[0]), cid) for cid, s in known.items()]
    ]
    result = assign([BatchItem("new", source)], vector[None, :], neighbours, known, profiles, 10, "t")
    return result.cluster_of["new"]


def test_an_item_joins_only_a_cluster_of_its_own_kind() -> None:
    vector = unit(1.0, 0.0)
    natural = seed_cluster("n", vector, "reddit", "t")
    known = {natural.id: natural}
    assert assign_one("sentry", vector, dict(known)) != natural.id  # identical text, other kind
    assert assign_one("github", vector, dict(known)) == natural.id


def test_each_kind_joins_at_its_own_threshold() -> None:
    close = unit(0.75, float(np.sqrt(1 - 0.75**2)))  # cosine 0.75 to (1, 0)
    natural = seed_cluster("n", unit(1.0, 0.0), "reddit", "t")
    machine = seed_cluster("m", unit(1.0, 0.0), "sentry", "t")
    assert assign_one("reddit", close, {natural.id: natural}) == natural.id  # 0.75 >= 0.70
    assert assign_one("sentry", close, {machine.id: machine}) != machine.id  # 0.75 < 0.80


async def test_same_text_from_both_kinds_lands_in_separate_clusters_even_after_a_pass(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    mixed = settings.model_copy(update={"cluster_machine_merge_threshold": 0.3, "cluster_resolution": 1.0})
    human = await seed_items(redis, keys, topic_titles(), source="reddit")
    machine = await seed_items(redis, keys, topic_titles(), source="sentry")
    await run_consumers([build_clusterer_consumer(mixed, redis, keys)], lambda: drained(redis, keys))
    await build_consolidator(mixed, redis, keys).run()

    members = await assert_each_item_in_one_cluster(redis, keys, human + machine)
    for items in members.values():
        assert set(items) <= set(human) or set(items) <= set(machine)
    assert sorted(len(m) for m in members.values()) == [5, 5, 5, 5, 5, 5]


async def test_a_redelivered_mixed_batch_changes_nothing(
    redis: Redis, keys: Keys, settings: Settings
) -> None:
    await seed_items(redis, keys, topic_titles(), source="reddit")
    await seed_items(redis, keys, topic_titles(), source="sentry")
    await run_consumers([build_clusterer_consumer(settings, redis, keys)], lambda: drained(redis, keys))
    before = await snapshot(redis)

    for _, event in await redis.xrange(keys.new_item_stream):
        await redis.xadd(keys.new_item_stream, event)  # every event delivered again
    await run_consumers([build_clusterer_consumer(settings, redis, keys)], lambda: drained(redis, keys))

    assert await snapshot(redis) == before
