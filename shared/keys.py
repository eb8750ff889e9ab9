"""Every Redis key, stream, group and stream-entry field name, in one place.

The key shapes are a contract with the existing dashboard (see docs/architecture.md): change them here or
nowhere. An optional prefix lets several deployments share one Redis.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from shared.models import item_id_for
from shared.partitions import SINGLE_NODE, Partitioning

INGEST_GROUP = "ingest"
CLUSTERER_GROUP = "clusterer"
POLLER_GROUP = "poller"  # on stream:poll:requests, read for pollers by the API
GITHUB_SYNC_GROUP = "github-sync"  # on stream:github:sync:requests, read for sync processes by the API
SCHEMA_VERSION = "1"


class IngestField:
    """Fields of a `stream:ingest` entry."""

    VERSION = "v"
    SOURCE = "source"
    PAYLOAD = "payload"
    RECEIVED_AT = "received_at"
    PRODUCER = "producer"
    REQUEST_ID = "request_id"
    # The producer's `Idempotency-Key` (`key#index` for a batch element); present only when sent.
    # Without an external id, the item id derives from it, so a retried request is a duplicate.
    IDEMPOTENCY_KEY = "idempotency_key"
    # With several partitions: the item id the publisher routed the event by (its partition follows
    # from it). Without an external id or idempotency key the item id is this one, minted by the
    # publisher, instead of one derived from the entry id, which is known only after the append.
    ITEM_ID = "item_id"


class NewItemField:
    """Fields of a `stream:feedback:new` entry."""

    VERSION = "v"
    ID = "id"
    SOURCE = "source"
    CREATED_AT = "created_at"
    EVENT_ID = "event_id"
    REQUEST_ID = "request_id"


class ItemField:
    """Fields of a `feedback:{id}` hash that the ingest write script reads or sets by name.

    The rest of the hash is `FeedbackItem.to_hash()`; `revision` is the script's own bookkeeping.
    """

    STATUS = "status"
    REVISION = "revision"


CLOSED_STATUS = "closed"
"""The item status that keeps an item out of clustering (a closed GitHub issue)."""

UPDATABLE_ITEM_FIELDS = (
    "title",
    "body",
    "raw_text",
    "metadata",
    "status",
    "repo",
    "github_issue_number",
    "github_issue_url",
)
"""Item fields a later event about a known item may rewrite in place (an edit, a close, a replay)."""


class Outcome(StrEnum):
    """What became of an ingest event (`GET /ingest/events/{id}`); `pending` is never stored."""

    PENDING = "pending"
    CREATED = "created"
    DUPLICATE = "duplicate"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    IGNORED = "ignored"
    DEAD_LETTERED = "dead_lettered"


class OutcomeField:
    """Fields of an outcome record (a JSON object, one per entry id in `Keys.event_outcomes`)."""

    STATUS = "status"
    FEEDBACK_ID = "feedback_id"
    REASON = "reason"
    ERROR = "error"
    DEAD_LETTER_ID = "dead_letter_id"


class PollRequestField:
    """Fields of a `stream:poll:requests` entry (`POST /admin/trigger-poll`)."""

    SUBREDDITS = "subreddits"  # JSON list; empty: every configured subreddit
    REQUESTED_AT = "requested_at"
    REQUEST_ID = "request_id"


class GitHubSyncRequestField:
    """Fields of a `stream:github:sync:requests` entry (`POST /admin/github-sync`)."""

    REPO = "repo"  # owner/repo
    REQUESTED_AT = "requested_at"
    REQUEST_ID = "request_id"


class DeadLetterField:
    """Fields a dead-letter entry adds to the original entry's fields."""

    ORIGINAL_ID = "original_id"
    GROUP = "group"
    DELIVERIES = "deliveries"
    ERROR = "error"
    FAILED_AT = "failed_at"


class ProvenanceField:
    """Fields an operator tool adds when it appends an entry again, to either stream a group reads."""

    REDRIVEN_FROM = "redriven_from"  # `soulcaster dlq redrive`: the dead letter's id
    REDRIVEN_ERROR = "redriven_error"  # `soulcaster dlq redrive`: why the entry had been dead-lettered
    IMPORTED_FROM = "imported_from"  # `soulcaster import`: the entry's id in the exporting deployment


CLUSTER_STATE_TAG = "clusters"
"""The one hash tag of the clusterer's state: its scripts check the lock and write clusters, their
indexes and the item-to-cluster map together, so they share a slot. Clusters gather items from every
partition, so this state is not partitioned; its write rate is the clusterer's, far below ingest's."""


class PartitionNotChosen(LookupError):
    """A per-partition key asked of `Keys` covering several partitions: use `partition(i)` or
    `for_item(id)` (a bug, never an input error)."""


@dataclass(frozen=True)
class Keys:
    """Key names under one deployment prefix, on one partition (`partition`) or all of them.

    Untagged (the single-node default) every key keeps its historic name. Tagged (Redis Cluster, or
    several partitions), a key's hash tag comes right after the prefix, before any id, so a brace
    inside an id can never steer its slot:
    - per item and per partition (`feedback:*`, the ingest and new-item streams, outcome hashes):
      the partition's tag, `{p1.7}:feedback:<id>`; an item's partition follows from its id;
    - the clusterer's state (`cluster:*`, `clusters:*`, the lock, vectors, graph, fingerprints):
      `{clusters}:cluster:<id>`;
    - the request streams: their own name, `{stream:poll:requests}`, so each stream, its DLQ and its
      bookkeeping share a slot;
    - configuration and the dev lock: untagged, single-key commands only.
    """

    prefix: str = ""
    partitioning: Partitioning = SINGLE_NODE
    chosen: int | None = None

    def _k(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def _tagged(self, tag: str, name: str) -> str:
        return f"{self.prefix}{{{tag}}}:{name}" if tag else f"{self.prefix}{name}"

    def _in_partition(self, name: str) -> str:
        return self._tagged(self.partitioning.tag(self.index), name)

    def _of_item(self, item_id: str, name: str) -> str:
        if not self.partitioning.tagged:
            return self._k(name)
        return self._tagged(self.partitioning.tag(self.partitioning.of(item_id)), name)

    def _cluster_state(self, name: str) -> str:
        return self._tagged(CLUSTER_STATE_TAG if self.partitioning.tagged else "", name)

    def _own_slot(self, name: str) -> str:
        return f"{self.prefix}{{{name}}}" if self.partitioning.tagged else self._k(name)

    # partitions
    @property
    def index(self) -> int:
        """The chosen partition; with a single partition, that one."""
        if self.chosen is not None:
            return self.chosen
        if self.partitioning.count == 1:
            return 0
        raise PartitionNotChosen(f"{self.partitioning.count} partitions: choose one before naming its keys")

    def partition(self, index: int) -> Keys:
        self.partitioning.tag(index)  # validates the index
        return replace(self, chosen=index)

    def for_item(self, item_id: str) -> Keys:
        return self.partition(self.partitioning.of(item_id))

    @property
    def partitions(self) -> tuple[Keys, ...]:
        """Every partition, in order: what a reader that spans them loops over."""
        return tuple(self.partition(index) for index in self.partitioning.all)

    # feedback items: a partition each, found from the item id
    def feedback(self, item_id: str) -> str:
        return self._of_item(item_id, f"feedback:{item_id}")

    def feedback_prefix(self) -> str:
        """The item-hash prefix of the chosen partition: scripts find an item's id after it."""
        return self._in_partition("feedback:")

    def feedback_external(self, source: str, external_id: str, item_id: str = "") -> str:
        """The dedupe key of `(source, external_id)`, in the partition of the item id derived from
        them; a caller with that id at hand passes it, saving a hash per event."""
        name = f"feedback:external:{source}:{external_id}"
        if not self.partitioning.tagged:
            return self._k(name)
        return self._of_item(item_id or item_id_for(source, external_id, ""), name)

    @property
    def feedback_created(self) -> str:
        return self._in_partition("feedback:created")

    def feedback_source(self, source: str) -> str:
        return self._in_partition(f"feedback:source:{source}")

    @property
    def feedback_sources(self) -> str:
        """Every source that has items: a set the write script adds to, so `/stats` never scans keys."""
        return self._in_partition("feedback:sources")

    @property
    def unclustered(self) -> str:
        return self._in_partition("feedback:unclustered")

    # clusters: one slot for all of the clusterer's state
    def cluster(self, cluster_id: str) -> str:
        return self._cluster_state(f"cluster:{cluster_id}")

    def cluster_items(self, cluster_id: str) -> str:
        return self._cluster_state(f"cluster:items:{cluster_id}")

    @property
    def clusters_all(self) -> str:
        return self._cluster_state("clusters:all")

    @property
    def clusters_by_size(self) -> str:
        return self._cluster_state("clusters:by_size")

    @property
    def clusters_by_created(self) -> str:
        return self._cluster_state("clusters:by_created")

    @property
    def cluster_of(self) -> str:
        """Item id -> its cluster: the authority, written with the cluster keys under the lock fence.
        An item's own `cluster_id` field is a mirror in the item's partition, written after it."""
        return self._cluster_state("cluster:of")

    @property
    def cluster_lock(self) -> str:
        return self._cluster_state("cluster:lock")

    @property
    def dev_run_lock(self) -> str:
        """Held (with a TTL, renewed) by a running `soulcaster dev`, so a second one cannot wipe its keys."""
        return self._k("lock:dev-run")

    def vectors(self, index_name: str) -> str:
        return self._cluster_state(f"vectors:{index_name}")

    def vector_snapshot(self, index_name: str) -> str:
        """The manifest of the vector log's newest snapshot; built from the log's own key, so both
        (and the chunks below) always share its hash slot."""
        return f"{self.vectors(index_name)}:snapshot"

    def vector_snapshot_chunk(self, index_name: str, snapshot: str, number: int) -> str:
        return f"{self.vector_snapshot(index_name)}:{snapshot}:{number}"

    def neighbour_graph(self, index_name: str, kind: str) -> str:
        """Append-only log of neighbour edges, one per embedder (index) and text kind."""
        return self._cluster_state(f"graph:{index_name}:{kind}")

    def error_group(self, fingerprint: str) -> str:
        """The first item seen with an error fingerprint: its cluster is the group's cluster."""
        return self._cluster_state(f"fingerprint:{fingerprint}")

    def graph_consolidated(self, index_name: str, kind: str) -> str:
        """The last graph log entry a consolidation pass has taken into account."""
        return self._cluster_state(f"graph:consolidated:{index_name}:{kind}")

    # configuration
    @property
    def reddit_subreddits(self) -> str:
        return self._k("config:reddit:subreddits")

    @property
    def github_sync_state(self) -> str:
        return self._k("config:github:repos")

    # streams
    @property
    def ingest_stream(self) -> str:
        return self._in_partition("stream:ingest")

    @property
    def ingest_dlq(self) -> str:
        return self.dead_letter_stream(self.ingest_stream)

    @property
    def new_item_stream(self) -> str:
        return self._in_partition("stream:feedback:new")

    @property
    def new_item_dlq(self) -> str:
        return self.dead_letter_stream(self.new_item_stream)

    @property
    def poll_requests_stream(self) -> str:
        return self._own_slot("stream:poll:requests")

    @property
    def github_sync_requests_stream(self) -> str:
        return self._own_slot("stream:github:sync:requests")

    @property
    def ingest_streams(self) -> tuple[str, ...]:
        return tuple(keys.ingest_stream for keys in self.partitions)

    @property
    def new_item_streams(self) -> tuple[str, ...]:
        return tuple(keys.new_item_stream for keys in self.partitions)

    @property
    def consumed_streams(self) -> tuple[str, ...]:
        """Every stream a consumer group reads, every partition's: what the janitor trims and
        `soulcaster streams` shows."""
        return (
            *self.ingest_streams,
            *self.new_item_streams,
            self.poll_requests_stream,
            self.github_sync_requests_stream,
        )

    def dead_letter_stream(self, stream: str) -> str:
        return f"{stream}:dlq"

    # consumer runtime bookkeeping
    def event_outcomes(self, entry_id: str) -> str:
        """The hour's hash of what became of the chosen partition's ingest entries (field: the entry
        id), for `GET /ingest/events/{id}`: one field per event, expiring an hour at a time."""
        hour = int(entry_id.split("-", 1)[0]) // 3_600_000
        return self._in_partition(f"ingest:events:{hour}")

    def last_errors(self, stream: str, group: str) -> str:
        """The last failure per pending entry, so a dead letter can say why it died."""
        return f"{stream}:errors:{group}"

    def heartbeat(self, stream: str, group: str, consumer: str) -> str:
        return f"{stream}:heartbeat:{group}:{consumer}"

    def paused(self, stream: str, group: str) -> str:
        """Set by the circuit breaker: the group stops reading until an operator clears it."""
        return f"{stream}:paused:{group}"
