"""One settings object for every process, read from environment variables.

Every default is safe for a single machine with no accounts: local Redis, offline providers, no
authentication. Production turns features on by setting variables, never by editing code.
"""

from __future__ import annotations

import os
import socket
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.keys import Keys
from shared.models import METADATA_READ_DEPTH
from shared.partitions import MAX_PARTITIONS, Partitioning, parse_partition_set

CommaList = Annotated[list[str], NoDecode]


def _default_consumer_name() -> str:
    """Stable across restarts of one pod (its name), so a restarted consumer drains its own pending."""
    return os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    # Redis and naming
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = Field(default="", validation_alias=AliasChoices("SOULCASTER_KEY_PREFIX", "KEY_PREFIX"))
    redis_socket_timeout_seconds: float = 30.0
    # Connections per process; a burst beyond them waits up to the pool timeout for a free one.
    redis_max_connections: int = 100
    redis_pool_timeout_seconds: float = 10.0
    # Redis Cluster (docs/scaling.md): REDIS_URL names any node. Partitions split the ingest and
    # new-item streams and every item's keys by item id; fixed once (changing it re-routes items).
    redis_cluster: bool = False
    ingest_partitions: int = Field(default=1, ge=1, le=MAX_PARTITIONS)
    # The partitions this process consumes ("" = all; ranges such as "0-3,7").
    ingest_partitions_owned: str = ""

    # HTTP API
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    ingest_api_keys: CommaList = Field(default_factory=list)
    admin_api_key: str = ""
    sentry_client_secret: str = ""
    github_webhook_secret: str = ""
    max_body_bytes: int = 1_048_576
    max_batch_items: int = 500
    # Request JSON nested deeper than this is refused (422); reads serve deeper stored metadata unparsed.
    max_json_depth: int = Field(default=32, ge=1, le=METADATA_READ_DEPTH)
    event_outcome_ttl_seconds: int = 7 * 24 * 3600

    # Consumer runtime (both groups)
    consumer_name: str = Field(default_factory=_default_consumer_name)
    health_port: int = 8081
    ingest_batch_size: int = 500
    clusterer_batch_size: int = 64
    read_block_ms: int = 1000
    visibility_timeout_ms: int = 60_000
    max_backoff_ms: int = 15 * 60_000
    max_deliveries: int = 6
    reclaim_interval_ms: int = 5_000
    heartbeat_stale_seconds: float = 60.0
    breaker_max_dead_letters: int = 100
    breaker_window_seconds: float = 60.0

    # Retention and hygiene (the janitor)
    replay_window_seconds: float = 7 * 24 * 3600
    janitor_interval_seconds: float = 300.0
    consumer_idle_prune_seconds: float = 3600.0

    # Clustering providers
    embedder: Literal["minilm", "hashing", "gemini"] = "minilm"
    vector_index: Literal["redis", "upstash"] = "redis"
    # VECTOR_INDEX=redis (docs/scaling.md 3.6): exact search below VECTOR_ANN_MIN items, an HNSW
    # graph searched VECTOR_SEARCH_EF wide above; a snapshot and a log trim every
    # VECTOR_SNAPSHOT_EVERY upserted vectors.
    vector_ann_min: int = Field(default=20_000, ge=1)
    vector_search_ef: int = Field(default=128, ge=1)
    vector_snapshot_every: int = Field(default=20_000, ge=1)
    summarizer: Literal["extractive", "gemini"] = "extractive"
    # Clustering (docs/clustering.md): None takes the embedder's measured default.
    cluster_similarity_threshold: float | None = None  # online: cosine a neighbour needs to vote
    cluster_resolution: float | None = None  # Leiden resolution of the natural-language pass
    # Sources whose text is machine-generated (errors, logs): they cluster apart, with their own settings.
    cluster_machine_sources: CommaList = ["sentry"]
    cluster_machine_similarity_threshold: float | None = None
    cluster_machine_merge_threshold: float | None = None  # average linkage of the machine pass
    # Consolidation passes: after this many quiet seconds since the last new item, or at the latest
    # this long after the first unconsolidated one; a full pass every interval (0: only on demand).
    cluster_pass_debounce_seconds: float = 3.0
    cluster_pass_max_wait_seconds: float = 20.0
    cluster_full_pass_interval_seconds: float = 0.0
    cluster_lock_ttl_ms: int = 30_000
    cluster_neighbours: int = 10
    sweep_interval_seconds: float = 600.0
    gemini_api_key: str = ""
    gemini_base_url: str = ""
    upstash_vector_rest_url: str = ""
    upstash_vector_rest_token: str = ""
    provider_retry_attempts: int = 5
    provider_retry_initial_delay_seconds: float = 0.5
    provider_retry_max_delay_seconds: float = 30.0
    provider_timeout_seconds: float = 60.0

    # Producers
    ingest_api_url: str = "http://127.0.0.1:8000"
    ingest_api_key: str = ""
    reddit_subreddits: CommaList = Field(default_factory=list)
    reddit_subreddit: str = ""
    reddit_sorts: CommaList = Field(default_factory=lambda: ["new"])
    reddit_poll_interval_seconds: float = 300.0
    reddit_base_url: str = "https://www.reddit.com"
    reddit_oauth_base_url: str = "https://oauth.reddit.com"
    reddit_client_id: str = ""
    reddit_client_secret: str = ""
    reddit_user_agent: str = "soulcaster-streams/0.1 (feedback triage)"
    github_repos: CommaList = Field(default_factory=list)
    github_token: str = ""
    github_api_url: str = "https://api.github.com"
    github_sync_interval_seconds: float = 600.0

    @model_validator(mode="after")
    def _check_partitions(self) -> Settings:
        if self.redis_cluster and ("{" in self.key_prefix or "}" in self.key_prefix):
            raise ValueError(
                "SOULCASTER_KEY_PREFIX may not hold { or } in cluster mode: it would tag every key"
            )
        parse_partition_set(self.ingest_partitions_owned, self.ingest_partitions)
        return self

    @property
    def partitioning(self) -> Partitioning:
        return Partitioning(self.ingest_partitions, tagged=self.redis_cluster or self.ingest_partitions > 1)

    def keys(self) -> Keys:
        """Every key name this deployment uses: its prefix and partitioning."""
        return Keys(self.key_prefix, self.partitioning)

    @property
    def owned_partitions(self) -> list[int]:
        """The partitions this process's consumers read (`INGEST_PARTITIONS_OWNED`)."""
        return parse_partition_set(self.ingest_partitions_owned, self.ingest_partitions)

    @field_validator(
        "ingest_api_keys",
        "reddit_subreddits",
        "reddit_sorts",
        "github_repos",
        "cluster_machine_sources",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build their own `Settings(...)` instead of patching this."""
    return Settings()
