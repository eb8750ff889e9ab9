"""`soulcaster streams` as a readable table: one row per stream and group, and with several
partitions a total row per stream family (every partition's ingest stream, every partition's
new-item stream) and group, so an operator reads the whole backlog at a glance."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from shared.stream_info import GroupInfo, StreamInfo

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


def total_rows(
    name: str, infos: Sequence[StreamInfo], paused: Mapping[tuple[str, str], str | None]
) -> list[tuple[str, ...]]:
    """One row per group over the family's streams: lengths, lag and pending summed (lag unknown if
    any partition's is), the oldest pending of all, and how many partitions are paused."""
    head = (name, str(sum(i.length for i in infos)), str(sum(i.dead_letter_length for i in infos)))
    by_group: dict[str, list[tuple[StreamInfo, GroupInfo]]] = {}
    for info in infos:
        for group in info.groups:
            by_group.setdefault(group.name, []).append((info, group))
    if not by_group:
        return [(*head, "-", "-", "-", "-", "-", "no group")]
    table: list[tuple[str, ...]] = []
    for group_name, members in by_group.items():
        groups = [group for _, group in members]
        lags = [group.lag for group in groups]
        ages = [group.oldest_pending_age_ms for group in groups if group.oldest_pending_age_ms is not None]
        stopped = sum(1 for info, _ in members if paused.get((info.stream, group_name)))
        table.append(
            (
                *head,
                group_name,
                "unknown" if None in lags else str(sum(lag or 0 for lag in lags)),
                str(sum(group.pending for group in groups)),
                age(max(ages) if ages else None),
                str(sum(group.consumers for group in groups)),
                f"PAUSED in {stopped} of {len(infos)}" if stopped else "ok",
            )
        )
    return table


def render(
    infos: Sequence[StreamInfo],
    paused: Mapping[tuple[str, str], str | None],
    families: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """`families`: total name -> its streams (only given with several partitions)."""
    by_stream = {info.stream: info for info in infos}
    totals = [
        row
        for name, streams in (families or {}).items()
        for row in total_rows(name, [by_stream[s] for s in streams], paused)
    ]
    table = [HEADERS, *rows(infos, paused), *totals]
    widths = [max(len(row[i]) for row in table) for i in range(len(HEADERS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in table
    )
