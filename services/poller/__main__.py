"""`python -m services.poller [--once] ...`: the same as `soulcaster poller`."""

import sys

from services.cli import main

sys.exit(main(["poller", *sys.argv[1:]]))
