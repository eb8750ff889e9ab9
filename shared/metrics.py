"""Prometheus metrics shared by every process. Labels are bounded: no ids of items or clusters."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "soulcaster"

messages_total = Counter(
    f"{PREFIX}_stream_messages_total",
    "Stream entries handled, by outcome (ok, retry, dead_letter).",
    ["stream", "group", "outcome"],
)
handler_seconds = Histogram(
    f"{PREFIX}_stream_handler_seconds",
    "Time to handle one batch.",
    ["stream", "group"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
end_to_end_seconds = Histogram(
    f"{PREFIX}_stream_end_to_end_seconds",
    "From the entry's append (its id's timestamp) to its ack.",
    ["stream", "group"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
reclaimed_total = Counter(
    f"{PREFIX}_stream_reclaimed_total",
    "Entries claimed from idle or failed deliveries.",
    ["stream", "group"],
)
dead_letters_total = Counter(
    f"{PREFIX}_stream_dead_letters_total",
    "Entries moved to a dead-letter stream.",
    ["stream", "group"],
)
group_lag = Gauge(
    f"{PREFIX}_stream_group_lag", "Entries not yet delivered to the group.", ["stream", "group"]
)
group_pending = Gauge(
    f"{PREFIX}_stream_group_pending", "Entries delivered but not acked.", ["stream", "group"]
)
group_oldest_pending_age = Gauge(
    f"{PREFIX}_stream_group_oldest_pending_age_seconds",
    "Age of the group's oldest pending entry, since it was appended (0 when nothing is pending).",
    ["stream", "group"],
)
group_paused = Gauge(
    f"{PREFIX}_stream_group_paused",
    "1 while the group's circuit breaker holds it paused (cleared by `soulcaster streams resume`).",
    ["stream", "group"],
)
stream_length = Gauge(f"{PREFIX}_stream_length", "Entries in the stream.", ["stream"])
unclustered_items = Gauge(
    f"{PREFIX}_unclustered_items",
    "Items waiting for clustering (feedback:unclustered), sampled by the API at each scrape.",
)
ingest_events_total = Counter(
    f"{PREFIX}_ingest_events_total",
    "Ingest events applied by the worker, by source and outcome (created, duplicate, updated, ...).",
    ["source", "outcome"],
)
api_requests_total = Counter(
    f"{PREFIX}_api_ingest_requests_total",
    "Ingest requests answered by the API, by source and HTTP status.",
    ["source", "status"],
)
heartbeat_age_seconds = Gauge(
    f"{PREFIX}_heartbeat_age_seconds",
    "Seconds since this process's loop last made progress (what its liveness probe checks).",
)
heartbeat_stale_after_seconds = Gauge(
    f"{PREFIX}_heartbeat_stale_after_seconds",
    "The heartbeat age past which this process's liveness probe fails (it differs per process kind).",
)
