"""Page parameters shared by the list endpoints, bounded so that any accepted value is a valid command.

Redis takes a range's start and stop as signed 64-bit integers; an offset near that limit would
make Redis refuse the command, which the API would report as 503. No real list is this long, so the
bound is far below it: a larger offset is the caller's 422.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_LIMIT = 500
MAX_OFFSET = 1_000_000_000

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET)]
