"""A hint for operator commands that find nothing: which other key prefixes hold a pipeline's data.

`soulcaster dev` writes under `dev:`; an operator command run without `SOULCASTER_KEY_PREFIX` then
shows empty streams with no group and gives no clue why. Only when this prefix's streams are empty
does it look (a SCAN for stream keys named like this deployment's ingest stream), so a busy
deployment never pays for the scan.
"""

from __future__ import annotations

from redis.asyncio import Redis

from shared.keys import Keys

SCAN_COUNT = 1000


async def other_prefixes_with_data(redis: Redis, keys: Keys) -> list[str]:
    """Prefixes other than `keys.prefix` with a non-empty ingest stream, sorted."""
    suffix = Keys().ingest_stream
    found = set()
    async for key in redis.scan_iter(match=f"*{suffix}", count=SCAN_COUNT, _type="STREAM"):
        prefix = untagged(key[: -len(suffix)])
        if prefix != keys.prefix and await redis.xlen(key):
            found.add(prefix)
    return sorted(found)


def untagged(head: str) -> str:
    """A partition stream's name minus its `{tag}:` (a prefix never holds a brace): the prefix."""
    return head[: head.rindex("{")] if head.endswith("}:") and "{" in head else head


async def empty_prefix_hint(redis: Redis, keys: Keys) -> str | None:
    """One line to print when this prefix's streams are empty and another prefix has data."""
    async with redis.pipeline(transaction=False) as pipe:
        for stream in (*keys.ingest_streams, *keys.new_item_streams):
            pipe.xlen(stream)
        if any(await pipe.execute()):
            return None
    others = await other_prefixes_with_data(redis, keys)
    if not others:
        return None
    where = ", ".join(f"'{prefix}'" for prefix in others)
    return (
        f"hint: nothing under the key prefix '{keys.prefix}', but keys exist under the prefix {where}; "
        f"set SOULCASTER_KEY_PREFIX={others[0]} to see them"
    )
