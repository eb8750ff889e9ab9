"""`soulcaster streams` as a readable table: one row per stream and group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.stream_info import StreamInfo

HEADERS = (
    "stream",
    "length",
    "dead letters",
    "group",
    "lag",
    "pending",
    "oldest pending",
    "consumers",
    "state",
)


def age(ms: int | None) -> str:
    if ms is None:
        return "-"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def rows(infos: Sequence[StreamInfo], paused: Mapping[tuple[str, str], str | None]) -> list[tuple[str, ...]]:
    table: list[tuple[str, ...]] = []
    for info in infos:
        head = (info.stream, str(info.length), str(info.dead_letter_length))
        if not info.groups:
            table.append((*head, "-", "-", "-", "-", "-", "no group"))
        for group in info.groups:
            state = (
                "PAUSED: " + str(paused[(info.stream, group.name)])
                if paused.get((info.stream, group.name))
                else "ok"
            )
            lag = "unknown" if group.lag is None else str(group.lag)
            table.append(
                (
                    *head,
                    group.name,
                    lag,
                    str(group.pending),
                    age(group.oldest_pending_age_ms),
                    str(group.consumers),
                    state,
                )
            )
    return table


def render(infos: Sequence[StreamInfo], paused: Mapping[tuple[str, str], str | None]) -> str:
    table = [HEADERS, *rows(infos, paused)]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADERS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in table
    )
