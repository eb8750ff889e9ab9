"""Operator subcommands: `streams`, `janitor`, `dlq`, `export`, `import`, `partitions`.

They act on every consumed stream of a deployment (its key prefix comes from the settings), every
partition's (`--partition 0-3,7` narrows the ones that take it), print plain tables, and exit non-zero
with a message on bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from redis.asyncio import Redis

from shared.keys import Keys
from shared.partitions import parse_partition_set
from shared.settings import Settings, get_settings

if TYPE_CHECKING:
    from shared.operations.dead_letters import DeadLetters
    from shared.publisher import RawEvent

T = TypeVar("T")
STREAM_CHOICES = {"ingest": "ingest_stream", "new": "new_item_stream"}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    streams = commands.add_parser("streams", help="length, lag, pending and dead letters of every stream")
    streams.add_argument("action", nargs="?", choices=["info", "resume", "prune-consumers"], default="info")
    streams.add_argument("--stream", choices=STREAM_CHOICES, help="with resume: the paused stream")
    streams.add_argument("--group", help="with resume: the paused group")
    add_partition_option(streams, "with resume: the partitions to resume")
    streams.set_defaults(handler=run_streams)

    janitor = commands.add_parser("janitor", help="trim streams safely and prune idle consumers")
    janitor.add_argument("--once", action="store_true", help="one pass, then exit")
    janitor.set_defaults(handler=run_janitor)

    dlq = commands.add_parser("dlq", help="list, show, redrive or purge dead letters")
    dlq.add_argument("action", choices=["list", "show", "redrive", "purge"])
    dlq.add_argument("ids", nargs="*", help="dead-letter entry ids (redrive/purge: none means all)")
    dlq.add_argument("--stream", choices=STREAM_CHOICES, default="ingest")
    dlq.add_argument("--count", type=int, default=50, help="list: at most this many per partition")
    add_partition_option(dlq, "the partitions whose dead letters to act on")
    dlq.set_defaults(handler=run_dlq)

    export = commands.add_parser("export", help="write a stream range as JSON Lines to stdout")
    export.add_argument("--stream", choices=STREAM_CHOICES, default="ingest")
    export.add_argument("--start", default="-", help="entry id, millisecond time or ISO-8601 time")
    export.add_argument("--end", default="+")
    add_partition_option(export, "the partitions to export")
    export.set_defaults(handler=run_export)

    load = commands.add_parser("import", help="append exported JSON Lines to a stream")
    load.add_argument("file", type=Path, help="a file written by `soulcaster export` (- for stdin)")
    load.add_argument("--stream", choices=STREAM_CHOICES, default="ingest")
    load.set_defaults(handler=run_import)

    partitions = commands.add_parser(
        "partitions", help="each partition's tag, slot, node and stream lengths (for resharding)"
    )
    partitions.set_defaults(handler=run_partitions)


def add_partition_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--partition", default="", metavar="SET", help=f"{what}: e.g. 2 or 0-3,7 (default all)"
    )


def chosen_partitions(keys: Keys, text: str) -> tuple[Keys, ...]:
    """The partitions `--partition` names (all when empty); a bad set is the caller's ValueError."""
    return tuple(keys.partition(i) for i in parse_partition_set(text, keys.partitioning.count))


def with_redis(job: Callable[[Redis, Keys, Settings], Awaitable[T]]) -> T:
    """Run one async job with a client for this deployment, closed afterwards."""
    from shared.redis_connection import connect

    async def main() -> T:
        settings = get_settings()
        redis = connect(settings)
        try:
            return await job(redis, settings.keys(), settings)
        finally:
            await redis.aclose()

    return asyncio.run(main())


def stream_named(keys: Keys, choice: str) -> str:
    return str(getattr(keys, STREAM_CHOICES[choice]))


def run_streams(args: argparse.Namespace) -> int:
    if args.action == "resume":
        if not (args.stream and args.group):
            print("resume needs --stream and --group", file=sys.stderr)
            return 2
        try:
            cleared = with_redis(lambda r, k, s: resume(r, chosen_partitions(k, args.partition), args))
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        print(f"resumed {cleared} partitions" if cleared > 1 else "resumed" if cleared else "was not paused")
        return 0
    if args.action == "prune-consumers":
        for line in with_redis(prune_all):
            print(line)
        return 0
    print(with_redis(describe_streams))
    return 0


async def resume(redis: Redis, partitions: Sequence[Keys], args: argparse.Namespace) -> int:
    """Clears the pause of the group on each partition's stream: how many were paused."""
    cleared = 0
    for part in partitions:
        cleared += int(await redis.delete(part.paused(stream_named(part, args.stream), args.group)))
    return cleared


async def describe_streams(redis: Redis, keys: Keys, settings: Settings) -> str:
    from shared.operations.prefix_hint import empty_prefix_hint
    from shared.operations.stream_table import render
    from shared.stream_info import stream_infos

    infos = await stream_infos(redis, [(s, keys.dead_letter_stream(s)) for s in keys.consumed_streams])
    pairs = [(info.stream, group.name) for info in infos for group in info.groups]
    async with redis.pipeline(transaction=False) as pipe:
        for stream, group in pairs:
            pipe.get(keys.paused(stream, group))
        paused = dict(zip(pairs, await pipe.execute(), strict=True))
    families = (
        {
            f"total({Keys().ingest_stream})": keys.ingest_streams,
            f"total({Keys().new_item_stream})": keys.new_item_streams,
        }
        if keys.partitioning.count > 1
        else None
    )
    table = render(infos, paused, families)
    hint = await empty_prefix_hint(redis, keys)
    return f"{table}\n{hint}" if hint else table


async def prune_all(redis: Redis, keys: Keys, settings: Settings) -> list[str]:
    from shared.operations.consumers import prune_idle_consumers

    lines = []
    idle_ms = int(settings.consumer_idle_prune_seconds * 1000)
    for stream in keys.consumed_streams:
        if not await redis.exists(stream):
            continue
        for group in await redis.xinfo_groups(stream):
            for name in await prune_idle_consumers(redis, stream, group["name"], idle_ms):
                lines.append(f"removed idle consumer {name} from {stream}/{group['name']}")
    return lines


def run_janitor(args: argparse.Namespace) -> int:
    """`--once`: one pass. Otherwise a pass every JANITOR_INTERVAL_SECONDS, with a health port."""

    async def janitor(redis: Redis, keys: Keys, settings: Settings) -> None:
        from shared.loop_process import LoopHeartbeat, run_until_signalled

        if args.once:
            await janitor_pass(redis, keys, settings)
            return
        heartbeat = LoopHeartbeat()

        async def passes() -> None:
            while True:
                heartbeat.beat()
                await janitor_pass(redis, keys, settings)
                await asyncio.sleep(settings.janitor_interval_seconds)

        stale_after = 3 * settings.janitor_interval_seconds + 60
        await run_until_signalled(passes(), settings, heartbeat, stale_after)

    with_redis(janitor)
    return 0


async def janitor_pass(redis: Redis, keys: Keys, settings: Settings) -> None:
    from shared.operations.janitor import Janitor

    trimmer = Janitor(redis, settings.replay_window_seconds)
    removed = 0
    for stream in keys.consumed_streams:
        report = await trimmer.trim(stream)
        removed += report.trimmed + report.deleted
        print(
            f"{stream}: removed {report.trimmed + report.deleted}, kept {report.kept_pending} pending",
            flush=True,
        )
    if keys.partitioning.count > 1:
        print(f"{len(keys.consumed_streams)} streams: removed {removed}", flush=True)
    for line in await prune_all(redis, keys, settings):
        print(line, flush=True)


def run_dlq(args: argparse.Namespace) -> int:
    """Each chosen partition's dead-letter stream; a redriven letter goes back to its own partition's
    stream, the one it was dead-lettered from. With several partitions a line starts with its partition."""

    async def act(redis: Redis, keys: Keys, settings: Settings) -> list[str]:
        from shared.operations.prefix_hint import empty_prefix_hint

        partitions = chosen_partitions(keys, args.partition)
        letters = {part.index: dead_letters_of(redis, part, args.stream) for part in partitions}
        mark = partition_mark(keys)
        if args.action == "list":
            listed = [
                f"{mark(i)}{d.id}  {d.fields.get('original_id', '')}  {d.error[:100]}"
                for i, dead in letters.items()
                for d in await dead.list(args.count)
            ]
            if listed:
                return listed
            hint = await empty_prefix_hint(redis, keys)
            names = ", ".join(dead.stream for dead in letters.values())
            return [f"no dead letters in {names}", *([hint] if hint else [])]
        if args.action == "show":
            return [await show_anywhere(letters, dead_letter_id, mark) for dead_letter_id in args.ids]
        if args.action == "redrive":
            lines = []
            for i, dead in letters.items():
                moved = await (dead.redrive(args.ids) if args.ids else dead.redrive_all())
                lines += [f"{mark(i)}{old} -> {new}" for old, new in moved.items()]
            return [*lines, f"redriven: {len(lines)}"]
        purged = [await dead.purge(args.ids) for dead in letters.values()]
        return [f"purged: {sum(purged)}"]

    try:
        lines = with_redis(act)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 0


def partition_mark(keys: Keys) -> Callable[[int], str]:
    """What starts a line about partition `i`: nothing with one partition, so output stays as it was."""
    several = keys.partitioning.count > 1
    return lambda index: f"{index}  " if several else ""


def dead_letters_of(redis: Redis, part: Keys, choice: str) -> DeadLetters:
    from shared.operations.dead_letters import DeadLetters

    stream = stream_named(part, choice)
    return DeadLetters(redis, stream, part.dead_letter_stream(stream))


async def show_anywhere(
    letters: Mapping[int, DeadLetters], dead_letter_id: str, mark: Callable[[int], str]
) -> str:
    """A dead letter's fields from the first partition that has that id (ids are per stream)."""
    for i, dead in letters.items():
        if letter := await dead.show(dead_letter_id):
            return f"{mark(i)}{letter.id}: {letter.fields}"
    return "not found"


def run_export(args: argparse.Namespace) -> int:
    """Every chosen partition's stream, one after the other, in one JSON Lines output."""
    from shared.operations.stream_export import export_range

    async def export(redis: Redis, keys: Keys, settings: Settings) -> int:
        from shared.operations.prefix_hint import empty_prefix_hint

        several = keys.partitioning.count > 1
        count = 0
        for part in chosen_partitions(keys, args.partition):
            stream = stream_named(part, args.stream)
            label = part.index if several else None
            count += await export_range(redis, stream, sys.stdout, args.start, args.end, label)
        if count == 0 and (hint := await empty_prefix_hint(redis, keys)):
            print(hint, file=sys.stderr)
        return count

    return run_counted(export, "exported")


def run_import(args: argparse.Namespace) -> int:
    """Ingest entries through the publisher (its routing); new-item entries to their item's partition."""
    from shared.operations.stream_export import (
        ImportPublisher,
        append_new_items,
        import_lines,
        publish_imported,
    )

    source = sys.stdin if str(args.file) == "-" else args.file.open(encoding="utf-8")

    async def load(redis: Redis, keys: Keys, settings: Settings) -> int:
        if args.stream == "new":
            return await import_lines(source, append_new_items(redis, keys))
        publisher = ImportPublisher(redis, keys, producer="soulcaster-import")
        return await import_lines(source, publish_imported(publisher, import_route(keys)))

    return run_counted(load, "imported")


def run_partitions(args: argparse.Namespace) -> int:
    from shared.operations.partition_map import partition_places, render_places

    async def places(redis: Redis, keys: Keys, settings: Settings) -> str:
        return render_places(await partition_places(redis, keys))

    print(with_redis(places))
    return 0


def import_route(keys: Keys) -> Callable[[RawEvent], RawEvent]:
    """With partitions, the item id each event is routed by, derived by the source's normalizer as
    for any producer (services.ingest.routing: the one service import here, for that reason);
    on a single node nothing to derive."""
    if not keys.partitioning.tagged:
        return lambda event: event
    from services.ingest.routing import routed

    return routed


def run_counted(job: Callable[[Redis, Keys, Settings], Awaitable[int]], verb: str) -> int:
    """A job that moves entries: its count on stderr (stdout may carry data); bad input exits 2."""
    try:
        count = with_redis(job)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{verb} {count} entries", file=sys.stderr)
    return 0
