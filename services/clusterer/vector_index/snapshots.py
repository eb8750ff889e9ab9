"""Snapshots of a replica's copy in Redis, so a replica starts from one instead of the whole log.

A snapshot is a small manifest hash and the copy's bytes in chunks (a Redis string holds at most
512 MB). The chunks are written first with a TTL, so a writer that dies halfway leaves nothing
behind for long; one script then checks that the manifest is still the one the writer saw, keeps
the new chunks, replaces the manifest, deletes the previous snapshot's chunks and trims the log
below the snapshot's entry, all at once. A reader that finds a chunk missing lost a race with the
next snapshot and reads the manifest again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

from redis.asyncio import Redis

from services.clusterer.vector_index.local_copy import CopyImage
from shared.keys import Keys

CHUNK_BYTES = 32 * 2**20
PENDING_CHUNK_SECONDS = 3600  # a chunk not yet named by a manifest expires after this

_SWITCH = """
local current = redis.call('HGET', KEYS[1], 'entry') or ''
if current ~= ARGV[1] then return 0 end
local new_chunks = tonumber(ARGV[2])
for i = 3, 2 + new_chunks do
  if redis.call('EXISTS', KEYS[i]) == 0 then return -1 end
end
for i = 3, 2 + new_chunks do redis.call('PERSIST', KEYS[i]) end
for i = 3 + new_chunks, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Manifest:
    """What a snapshot covers: every log entry up to `entry`, whose predecessor in the log is
    `before` (so a replica standing exactly there knows the trim took nothing it lacks)."""

    entry: bytes
    before: bytes
    upserted: int  # vectors upserted into the log up to `entry`, replacements included
    count: int
    dimensions: int
    storage: str
    chunks: int
    ids_bytes: int
    clusters_bytes: int
    payload_bytes: int

    def to_fields(self) -> dict[bytes, bytes]:
        return {
            field.name.encode(): value if isinstance(value, bytes) else str(value).encode()
            for field in fields(self)
            for value in [getattr(self, field.name)]
        }

    @classmethod
    def from_fields(cls, stored: dict[bytes, bytes]) -> Manifest:
        def text(name: str) -> str:
            return stored[name.encode()].decode()

        return cls(
            entry=stored[b"entry"],
            before=stored[b"before"],
            upserted=int(text("upserted")),
            count=int(text("count")),
            dimensions=int(text("dimensions")),
            storage=text("storage"),
            chunks=int(text("chunks")),
            ids_bytes=int(text("ids_bytes")),
            clusters_bytes=int(text("clusters_bytes")),
            payload_bytes=int(text("payload_bytes")),
        )


class SnapshotStore:
    def __init__(self, redis: Redis, keys: Keys, index_name: str, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        """`redis` must not decode replies (see `shared.redis_connection.binary_twin`)."""
        self._redis = redis
        self._keys = keys
        self._index_name = index_name
        self.manifest_key = keys.vector_snapshot(index_name)
        self._log_key = keys.vectors(index_name)
        self._chunk_bytes = chunk_bytes
        self._switch = redis.register_script(_SWITCH)

    async def manifest(self) -> Manifest | None:
        stored = await self._redis.hgetall(self.manifest_key)
        return Manifest.from_fields(stored) if stored else None

    async def read(self, manifest: Manifest, payload: Path) -> CopyImage | None:
        """The snapshot, its storage written to `payload` chunk by chunk (never all in memory);
        None when a chunk is gone: a newer snapshot replaced this one meanwhile."""
        head_bytes = manifest.ids_bytes + manifest.clusters_bytes
        head = bytearray()
        written = 0
        with payload.open("wb") as sink:
            for key in self._chunk_keys(manifest):
                chunk = await self._redis.get(key)
                if chunk is None:
                    return None
                taken = max(0, min(len(chunk), head_bytes - len(head)))
                head += chunk[:taken]
                written += sink.write(memoryview(chunk)[taken:])
        if len(head) != head_bytes or written != manifest.payload_bytes:
            raise ValueError(f"snapshot {manifest.entry!r} does not hold what its manifest says")
        ids, clusters = bytes(head[: manifest.ids_bytes]), bytes(head[manifest.ids_bytes :])
        return CopyImage(manifest.storage, ids, clusters, payload, written)

    async def write(self, image: CopyImage, manifest: Manifest, replaces: Manifest | None) -> bool:
        """Switch to the new snapshot and trim the log below its entry; False (and nothing kept)
        when the manifest is no longer `replaces`: another replica switched first."""
        chunk_keys = self._chunk_keys(manifest)
        pieces = _pieces(image.ids + image.clusters, image.payload, self._chunk_bytes)
        for key, chunk in zip(chunk_keys, pieces, strict=True):
            await self._redis.set(key, chunk, ex=PENDING_CHUNK_SECONDS)
        old_keys = self._chunk_keys(replaces) if replaces else []
        pairs = [part for pair in manifest.to_fields().items() for part in pair]
        switched: int = await self._switch(
            keys=[self.manifest_key, self._log_key, *chunk_keys, *old_keys],
            args=[replaces.entry if replaces else b"", len(chunk_keys), manifest.entry, *pairs],
        )
        if switched != 1:
            await self._redis.delete(*chunk_keys)
        return switched == 1

    def chunk_count(self, image: CopyImage) -> int:
        size = len(image.ids) + len(image.clusters) + image.payload_bytes
        return max(1, -(-size // self._chunk_bytes))

    def _chunk_keys(self, manifest: Manifest) -> list[str]:
        snapshot = manifest.entry.decode()
        return [
            self._keys.vector_snapshot_chunk(self._index_name, snapshot, number)
            for number in range(manifest.chunks)
        ]


def _pieces(head: bytes, payload: Path, size: int) -> Iterator[bytes]:
    """`head`, then the payload file's bytes, in pieces of `size` (the last shorter; at least one)."""
    pending = head
    produced = False
    with payload.open("rb") as source:
        while True:
            while len(pending) >= size:
                yield pending[:size]
                pending, produced = pending[size:], True
            more = source.read(size - len(pending))
            if not more:
                break
            pending += more
    if pending or not produced:
        yield pending
