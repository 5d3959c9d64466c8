"""The values and keys of the journey bookkeeping tables (``stream-clock``,
``journey-deadlines``, ``journey-due``) and their codecs (:mod:`agents.domain.codec`;
v1 was a JSON pair).

``journey-due`` holds the same entries as ``journey-deadlines`` under a key that sorts by
deadline (:func:`due_key`): a store kept in key order (RocksDB) lists the customers whose
deadline has passed first, so the silence check reads only those. The key holds a token
of the customer (the shell gives the keyed hash of the erasure), not the id: RocksDB keeps
the first and last key of every file in its MANIFEST log, which an erasure's compaction
does not rewrite, and a deadline-ordered key puts any customer at a file's edge.
"""

from __future__ import annotations

import math
from typing import Any

from msgspec import Struct

from agents.domain.codec import Codec, UnreadableValue


class StreamClock(Struct, array_like=True, gc=False):
    """An input partition's event-time clock."""

    event_time: float  # the latest event time seen (clamped to the wall clock)
    wall_time: float  # the wall time when the clock was last written


class JourneyDeadline(Struct, array_like=True, gc=False):
    """A lower bound of a customer's earliest journey deadline, and its input partition."""

    deadline: float
    partition: int


def _pair(kind: type[Any]) -> Any:
    return lambda v: kind(v[0], v[1])


CLOCK_CODEC: Codec[StreamClock] = Codec(StreamClock, 2, _pair(StreamClock))
DEADLINE_CODEC: Codec[JourneyDeadline] = Codec(JourneyDeadline, 2, _pair(JourneyDeadline))

class DueEntry(Struct, array_like=True, gc=False):
    """A ``journey-due`` entry: the customer whose earliest deadline it is."""

    customer_id: str
    deadline: float
    partition: int


def _never_v1(value: Any) -> DueEntry:
    raise UnreadableValue("journey-due has no version 1")


DUE_CODEC: Codec[DueEntry] = Codec(DueEntry, 2, _never_v1)  # the version of its siblings

DUE_DIGITS = 16  # milliseconds since the epoch, zero-padded: until the year 318,857


def due_ms(deadline: float) -> int:
    """The deadline in whole milliseconds, rounded down (so a key is never later than its
    deadline); before the epoch counts as 0."""
    return max(0, math.floor(deadline * 1000.0))


def due_key(deadline: float, token: str) -> str:
    """``journey-due``'s key: the deadline's milliseconds, fixed width, then the customer's
    token. Fixed-width digits sort as numbers do, whatever the token holds."""
    return f"{due_ms(deadline):0{DUE_DIGITS}d}/{token}"


def due_key_ms(key: str) -> int:
    return int(key[:DUE_DIGITS])
