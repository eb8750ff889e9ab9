"""`make bench`: every self-contained benchmark in sequence, at sizes small enough for a laptop.

Each runs as its own process (as `python -m bench.<name>` would), so one benchmark's memory and
loaded models never skew the next one's figures. The benchmarks that read the labelled data sets
(`cluster_quality`, `clusterer_speed`) or need the torch reference venv (`embedder_reference`) are
left out: they need files a fresh clone does not have. Pass `--full` for each benchmark's own sizes.

    .venv/bin/python -m bench.run_all [--full]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Bench:
    module: str
    small_args: tuple[str, ...]


BENCHES = (
    Bench("bench.ingest_worker", ("--events", "10000", "--baseline-events", "2000", "--runs", "1")),
    Bench(
        "bench.sustained_pipeline",
        ("--backlog", "5000", "--rate", "1000", "--seconds", "5", "--workers", "1", "2"),
    ),
    Bench(
        "bench.cluster_ingest",
        ("--events", "5000", "--runs", "1", "--masters", "3", "--rate", "1000", "--seconds", "2"),
    ),
    Bench(
        "bench.api_throughput",
        ("--requests", "300", "--batches", "10", "--batch-size", "50", "--rounds", "1"),
    ),
    Bench("bench.providers_batching", ("--queries", "50", "--stored", "200", "--texts", "100")),
)


def command(bench: Bench, full: bool) -> list[str]:
    return [sys.executable, "-m", bench.module, *(() if full else bench.small_args)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="each benchmark's own default sizes")
    args = parser.parse_args()
    failed = []
    for bench in BENCHES:
        print(f"\n=== {bench.module} ===", flush=True)
        if subprocess.run(command(bench, args.full), check=False).returncode != 0:
            failed.append(bench.module)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
