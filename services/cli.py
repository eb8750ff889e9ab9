"""The `soulcaster` command: one entry point, a subcommand per process or operator tool.

Each service registers its own subcommands; their imports stay inside the handlers so that
`soulcaster --help` starts fast and a worker never loads what another process needs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from shared.logs import configure_logging

COMMAND_MODULES = (
    "services.ingest.commands",
    "services.poller.github.commands",
    "services.poller.reddit.commands",
    "services.clusterer.commands",
    "shared.operations.commands",
    "services.dev.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="soulcaster", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
