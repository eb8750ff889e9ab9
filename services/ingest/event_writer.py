"""Writing normalized events to the `feedback:*` keys: one Lua call for a whole batch.

Per event the script checks the event's outcome record and the dedupe key, writes the item and its
indexes, and announces it on `stream:feedback:new`, atomically (see apply_events.lua).

Each event is encoded to Redis protocol on its own, when it is prepared: text that cannot be sent
(a lone surrogate) fails that event alone, never the batch it came with. Encoding with hiredis's
packer and sending the batch's bytes on a pooled connection costs a few microseconds per event,
where redis-py's pure-Python packer costs about 25 for the same thirty-odd arguments.

On a Redis Cluster the same bytes go to the master that owns the partition's slot (every key of
the call carries the partition's tag), on that node's pooled connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import (
    AskError,
    ClusterDownError,
    NoScriptError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.ingest.normalized import Ignored, NormalizeResult
from services.ingest.script_contract import SCRIPT, EventKind, ScriptMode
from shared.keys import SCHEMA_VERSION, ItemField, Keys
from shared.redis_connection import RETRIES

ONLY_UPDATES = "only updates a known item"
Shadow = dict[str, Any]
"""Writes a dry run predicted so far: key -> string value, or hash field -> value."""
LOST_CONNECTION = (RedisConnectionError, RedisTimeoutError)
REROUTED = (AskError, TryAgainError, ClusterDownError)
"""A slot moved or moving (a reshard, a failover; `MOVED` is an `AskError`): the slot map is stale."""


def resp_items(values: Iterable[str | bytes]) -> bytes:
    """Values as consecutive RESP bulk strings, without the array header (hiredis packs them)."""
    packed: bytes = hiredis.pack_command(tuple(values))  # type: ignore[arg-type]  # its stub says a 1-tuple
    return packed[packed.index(b"\n") + 1 :]


FIRST_DELIVERY, MAYBE_APPLIED = resp_items(["0"]), resp_items(["1"])


@dataclass(slots=True)
class PreparedEvent:
    """One event's four KEYS and its ARGV (after the check-prior flag), already in Redis protocol.

    `first_delivery`: never handed to any consumer before, so it cannot have been applied and the
    script skips looking up its outcome record.
    """

    entry_id: str
    source: str
    request_id: str
    key_names: tuple[str, ...]
    keys: bytes
    args: bytes
    arg_count: int
    first_delivery: bool


def _prepared(
    entry_id: str,
    source: str,
    request_id: str,
    names: tuple[str, ...],
    args: Sequence[str],
    first_delivery: bool,
) -> PreparedEvent:
    """Encoded here, so text Redis cannot carry raises for this event alone."""
    return PreparedEvent(
        entry_id,
        source,
        request_id,
        names,
        resp_items(names),
        resp_items(args),
        1 + len(args),
        first_delivery,
    )


@dataclass(slots=True)
class Applied:
    entry_id: str
    source: str
    request_id: str
    status: str
    item_id: str


class EventWriter:
    def __init__(self, redis: Redis, keys: Keys, outcome_ttl_seconds: int) -> None:
        self._redis = redis
        self._cluster = redis if isinstance(redis, RedisCluster) else None
        self._keys = keys
        self._sha = redis.register_script(SCRIPT).sha
        global_keys = [keys.feedback_created, keys.unclustered, keys.new_item_stream, keys.feedback_sources]
        self._slot_key = global_keys[0]
        # A key an event does not use: '' on a single node, a name in the partition's slot when tagged.
        self._no_key = keys.feedback_prefix() if keys.partitioning.tagged else ""
        self._global_keys = resp_items(global_keys)
        self._global_key_count = len(global_keys)
        self._global_args = [str(outcome_ttl_seconds), keys.feedback_prefix(), SCHEMA_VERSION]

    @property
    def keys(self) -> Keys:
        """The partition this writer writes: its script's keys all live in that partition's slot."""
        return self._keys

    def prepare(
        self, entry_id: str, request_id: str, result: NormalizeResult, first_delivery: bool = False
    ) -> PreparedEvent:
        """Raises `UnicodeEncodeError` for text Redis cannot carry: the caller fails this event alone."""
        outcome_key = self._keys.event_outcomes(entry_id)
        if isinstance(result, Ignored):
            args = [
                EventKind.IGNORED,
                entry_id,
                "",
                "",
                "0",
                "",
                request_id,
                "0",
                "0",
                "",
                result.reason,
                "0",
            ]
            none = self._no_key
            return _prepared(entry_id, "", request_id, (outcome_key, none, none, none), args, first_delivery)
        item = result.item
        dedupe_key = (
            self._keys.feedback_external(item.source, item.external_id, item.id)
            if item.external_id
            else self._no_key
        )
        names: tuple[str, ...] = (
            outcome_key,
            self._keys.feedback(item.id),
            dedupe_key,
            self._keys.feedback_source(item.source),
        )
        fields = item.to_hash()
        revision = "" if result.revision is None else str(result.revision)
        if revision:
            fields[ItemField.REVISION] = revision
        args = [
            EventKind.ITEM,
            entry_id,
            item.id,
            item.source,
            repr(item.created_at.timestamp()),
            fields["created_at"],
            request_id,
            "1" if result.update_existing else "0",
            "1" if result.create_if_new else "0",
            revision,
            "" if result.create_if_new else ONLY_UPDATES,
            str(2 * len(fields)),
            *chain.from_iterable(fields.items()),
        ]
        return _prepared(entry_id, item.source, request_id, names, args, first_delivery)

    async def apply(self, events: Sequence[PreparedEvent], replay: bool = False) -> list[Applied]:
        """One script call for the batch. Raises on a script error; see `apply_each`.

        `replay` re-applies events already applied once (a backfill through a newer normalizer).
        """
        mode = ScriptMode.REPLAY if replay else ScriptMode.APPLY
        replies = await self._call(events, mode, check_prior=replay)
        return self._applied(events, replies)

    async def predict(self, events: Sequence[PreparedEvent], shadow: Shadow) -> list[Applied]:
        """What `apply(events, replay=True)` would do, decided by the script itself, writing nothing.

        `shadow` holds the writes earlier predictions made (it is extended with this call's), so a
        dry run over many batches decides each event as the real replay would.
        """
        involved = set(chain.from_iterable(event.key_names for event in events))
        relevant = {key: value for key, value in shadow.items() if key in involved}
        replies, written = await self._call(events, ScriptMode.PREDICT, check_prior=True, shadow=relevant)
        shadow.update(json.loads(written))
        return self._applied(events, replies)

    async def apply_each(self, events: Sequence[PreparedEvent]) -> tuple[list[Applied], dict[str, Exception]]:
        """One call per event, so a single event the server rejects fails alone, not its whole batch.

        The failed batch call may have applied some events before it stopped, so every event looks
        up its outcome record here."""
        applied: list[Applied] = []
        failed: dict[str, Exception] = {}
        for event in events:
            try:
                applied += self._applied(
                    [event], await self._call([event], ScriptMode.APPLY, check_prior=True)
                )
            except ResponseError as exc:
                failed[event.entry_id] = exc
        return applied, failed

    @staticmethod
    def _applied(events: Sequence[PreparedEvent], replies: list[str]) -> list[Applied]:
        """The script's flat reply (status, item id, status, item id, ...) matched to its events."""
        return [
            Applied(event.entry_id, event.source, event.request_id, status, item_id)
            for event, status, item_id in zip(events, replies[::2], replies[1::2], strict=True)
        ]

    def _command(
        self, events: Sequence[PreparedEvent], mode: ScriptMode, check_prior: bool, shadow: Shadow | None
    ) -> bytes:
        key_count = self._global_key_count + 4 * len(events)
        header = [*self._global_args, mode, "" if shadow is None else json.dumps(shadow)]
        parts = [resp_items(["EVALSHA", self._sha, str(key_count)]), self._global_keys]
        parts += [event.keys for event in events]
        parts.append(resp_items(header))
        for event in events:
            parts.append(MAYBE_APPLIED if check_prior or not event.first_delivery else FIRST_DELIVERY)
            parts.append(event.args)
        total = 3 + key_count + len(header) + sum(event.arg_count for event in events)
        return b"*%d\r\n" % total + b"".join(parts)

    async def _call(
        self,
        events: Sequence[PreparedEvent],
        mode: ScriptMode,
        check_prior: bool,
        shadow: Shadow | None = None,
    ) -> Any:
        """The script's reply, sent on a pooled connection with the client's retry on connection errors.

        A lost reply may hide a call that ran, so every attempt after the first checks prior outcomes."""
        if self._cluster is not None:
            return await self._call_on_owner(self._cluster, events, mode, check_prior, shadow)
        attempts = 0

        async def attempt(connection: Connection) -> Any:
            nonlocal attempts
            command = self._command(events, mode, check_prior or attempts > 0, shadow)
            attempts += 1
            await connection.send_packed_command(command)
            return await connection.read_response()

        pool = self._redis.connection_pool
        connection: Connection = await pool.get_connection()
        try:
            try:
                return await connection.retry.call_with_retry(
                    lambda: attempt(connection), lambda _: connection.disconnect()
                )
            except NoScriptError:
                await self._redis.script_load(SCRIPT)
                return await attempt(connection)
        finally:
            await pool.release(connection)

    async def _call_on_owner(
        self,
        cluster: RedisCluster,
        events: Sequence[PreparedEvent],
        mode: ScriptMode,
        check_prior: bool,
        shadow: Shadow | None,
    ) -> Any:
        """The packed call on the master owning the partition's slot, on one of its pooled connections.

        The cluster client's own routing would pack every argument again in Python. A lost
        connection or a stale slot map (the slot moved) refreshes the map and tries again, checking
        prior outcomes from then on, as the single-node retry does."""
        for attempt in range(RETRIES + 1):
            await cluster.initialize()  # learns the slot map on first use; at once afterwards
            node = cluster.get_node_from_key(self._slot_key)
            if node is None:  # only asked of replicas; a master always owns a covered slot
                raise ClusterDownError(f"no master owns the slot of {self._slot_key}")
            connection = node.acquire_connection()
            try:
                command = self._command(events, mode, check_prior or attempt > 0, shadow)
                try:
                    await connection.send_packed_command(command)
                    return await connection.read_response()
                except NoScriptError:  # the script did not run: send it again once loaded there
                    await node.execute_command("SCRIPT", "LOAD", SCRIPT)
                    await connection.send_packed_command(command)
                    return await connection.read_response()
            except LOST_CONNECTION + REROUTED as error:
                if isinstance(error, LOST_CONNECTION):
                    await connection.disconnect()
                if attempt == RETRIES:
                    raise
            finally:
                node.release(connection)
            await cluster.nodes_manager.initialize()
            await asyncio.sleep(0.05 * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")
