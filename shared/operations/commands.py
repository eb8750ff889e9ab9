"""Operator subcommands: `streams`, `janitor`, `dlq`, `export`, `import`.

They act on every consumed stream of a deployment (its key prefix comes from the settings), print
plain tables, and exit non-zero with a message on bad input.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from redis.asyncio import Redis

from shared.keys import Keys
from shared.settings import Settings, get_settings

T = TypeVar("T")
STREAM_CHOICES = {"ingest": "ingest_stream", "new": "new_item_stream"}


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    streams = commands.add_parser("streams", help="length, lag, pending and dead letters of every stream")
    streams.add_argument("action", nargs="?", choices=["info", "resume", "prune-consumers"], default="info")
    streams.add_argument("--stream", choices=STREAM_CHOICES, help="with resume: the paused stream")
    streams.add_argument("--group", help="with resume: the paused group")
    streams.set_defaults(handler=run_streams)

    janitor = commands.add_parser("janitor", help="trim streams safely and prune idle consumers")
    janitor.add_argument("--once", action="store_true", help="one pass, then exit")
    janitor.set_defaults(handler=run_janitor)

    dlq = commands.add_parser("dlq", help="list, show, redrive or purge dead letters")
    dlq.add_argument("action", choices=["list", "show", "redrive", "purge"])
    dlq.add_argument("ids", nargs="*", help="dead-letter entry ids (redrive/purge: none means all)")
    dlq.add_argument("--stream", choices=STREAM_CHOICES, default="ingest")
    dlq.add_argument("--count", type=int, default=50)
    dlq.set_defaults(handler=run_dlq)

    export = commands.add_parser("export", help="write a stream range as JSON Lines to stdout")
    export.add_argument("--stream", choices=STREAM_CHOICES, default="ingest")
    export.add_argument("--start", default="-", help="entry id, millisecond time or ISO-8601 time")
    export.add_argument("--end", default="+")
    export.set_defaults(handler=run_export)

    load = commands.add_parser("import", help="append exported JSON Lines to a stream")
    load.add_argument("file", type=Path, help="a file written by `soulcaster export` (- for stdin)")
    load.add_argument("--stream", choices=STREAM_CHOICES, default="ingest")
    load.set_defaults(handler=run_import)


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
        cleared = with_redis(lambda r, k, s: r.delete(k.paused(stream_named(k, args.stream), args.group)))
        print("resumed" if cleared else "was not paused")
        return 0
    if args.action == "prune-consumers":
        for line in with_redis(prune_all):
            print(line)
        return 0
    print(with_redis(describe_streams))
    return 0


async def describe_streams(redis: Redis, keys: Keys, settings: Settings) -> str:
    from shared.operations.prefix_hint import empty_prefix_hint
    from shared.operations.stream_table import render
    from shared.stream_info import stream_info

    infos = [await stream_info(redis, s, keys.dead_letter_stream(s)) for s in keys.consumed_streams]
    paused = {
        (info.stream, group.name): await redis.get(keys.paused(info.stream, group.name))
        for info in infos
        for group in info.groups
    }
    table = render(infos, paused)
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
    for stream in keys.consumed_streams:
        report = await trimmer.trim(stream)
        print(
            f"{stream}: removed {report.trimmed + report.deleted}, kept {report.kept_pending} pending",
            flush=True,
        )
    for line in await prune_all(redis, keys, settings):
        print(line, flush=True)


def run_dlq(args: argparse.Namespace) -> int:
    from shared.operations.dead_letters import DeadLetters
    from shared.operations.prefix_hint import empty_prefix_hint

    async def act(redis: Redis, keys: Keys, settings: Settings) -> list[str]:
        stream = stream_named(keys, args.stream)
        letters = DeadLetters(redis, stream, keys.dead_letter_stream(stream))
        if args.action == "list":
            listed = [
                f"{d.id}  {d.fields.get('original_id', '')}  {d.error[:100]}"
                for d in await letters.list(args.count)
            ]
            if listed:
                return listed
            hint = await empty_prefix_hint(redis, keys)
            return [f"no dead letters in {keys.dead_letter_stream(stream)}", *([hint] if hint else [])]
        if args.action == "show":
            shown = [await letters.show(i) for i in args.ids]
            return [f"{d.id}: {d.fields}" if d else "not found" for d in shown]
        if args.action == "redrive":
            moved = await (letters.redrive(args.ids) if args.ids else letters.redrive_all())
            return [f"{old} -> {new}" for old, new in moved.items()] + [f"redriven: {len(moved)}"]
        return [f"purged: {await letters.purge(args.ids)}"]

    for line in with_redis(act):
        print(line)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from shared.operations.stream_export import export_range

    async def export(redis: Redis, keys: Keys, settings: Settings) -> int:
        from shared.operations.prefix_hint import empty_prefix_hint

        count = await export_range(redis, stream_named(keys, args.stream), sys.stdout, args.start, args.end)
        if count == 0 and (hint := await empty_prefix_hint(redis, keys)):
            print(hint, file=sys.stderr)
        return count

    return run_counted(export, "exported")


def run_import(args: argparse.Namespace) -> int:
    from shared.operations.stream_export import import_lines

    source = sys.stdin if str(args.file) == "-" else args.file.open(encoding="utf-8")

    async def load(redis: Redis, keys: Keys, settings: Settings) -> int:
        return await import_lines(redis, stream_named(keys, args.stream), source)

    return run_counted(load, "imported")


def run_counted(job: Callable[[Redis, Keys, Settings], Awaitable[int]], verb: str) -> int:
    """A job that moves entries: its count on stderr (stdout may carry data); bad input exits 2."""
    try:
        count = with_redis(job)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"{verb} {count} entries", file=sys.stderr)
    return 0
