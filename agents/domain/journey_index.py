"""The values of the journey bookkeeping tables (``stream-clock``, ``journey-deadlines``)
and their codecs (:mod:`agents.domain.codec`; v1 was a JSON pair)."""

from __future__ import annotations

from typing import Any

from msgspec import Struct

from agents.domain.codec import Codec


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
