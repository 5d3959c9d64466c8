"""Counted moments on their way to the touchpoint andon, a batch per touchpoint.

The scoring agent partitions by customer, the andon by touchpoint, so every counted
moment crosses an internal topic. One record per moment would cost a produce, a consume
and a table write per input event; the scoring worker instead gathers its moments per
touchpoint and sends each touchpoint's batch as one record. The andon judges the batch
moment by moment, in the order the scoring worker counted them, so the statuses and
the transitions (with the event that caused each) are the ones single records give.

Each observation carries the position of the input record it came from (input
partition, offset), so the andon counts a moment once however often it is sent: after
a crash the scoring worker reads its records since the last commit again and sends
their observations again (:mod:`agents.domain.touchpoint_status` keeps, per input
partition, the highest offset applied). A batch holds a touchpoint's observations in
counting order, so those of one input partition are in offset order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

# event time, failed, event id, input partition, input offset (NO_POSITION: not known)
Observation = tuple[float, bool, str, int, int]
NO_POSITION = -1

MAGIC = b"MOB2"  # a batch with positions; a value without it is the earlier format
_HEAD = struct.Struct("<d?iqH")  # event time, failed, partition, offset, event id length
_OLD_HEAD = struct.Struct("<d?H")  # the earlier format: no position


def encode_batch(observations: list[Observation]) -> bytes:
    parts = [MAGIC]
    for at, failed, event_id, partition, offset in observations:
        eid = event_id.encode()
        parts.append(_HEAD.pack(at, failed, partition, offset, len(eid)))
        parts.append(eid)
    return b"".join(parts)


def decode_batch(value: bytes) -> Iterator[Observation]:
    """The observations of a record; ``struct.error``/``ValueError`` on a malformed one.
    A record of the earlier format (written before an upgrade) yields its observations
    without a position."""
    view = memoryview(value)
    end = len(value)
    if value[:len(MAGIC)] == MAGIC:
        pos, head, positioned = len(MAGIC), _HEAD, True
    else:
        pos, head, positioned = 0, _OLD_HEAD, False
    size = head.size
    while pos < end:
        if positioned:
            at, failed, partition, offset, n = head.unpack_from(view, pos)
        else:
            at, failed, n = head.unpack_from(view, pos)
            partition = offset = NO_POSITION
        pos += size
        if pos + n > end:
            raise ValueError("observation batch truncated")
        yield at, failed, bytes(view[pos:pos + n]).decode(), partition, offset
        pos += n


class ObservationBuffer:
    """Moments counted since the last flush, per touchpoint, in counting order."""

    __slots__ = ("_batches", "max_batch", "pending")

    def __init__(self, max_batch: int) -> None:
        self._batches: dict[str, list[Observation]] = {}
        self.max_batch = max_batch
        self.pending = 0

    def add(self, touchpoint: str, at: float, failed: bool, event_id: str,
            position: tuple[int, int] | None = None) -> bool:
        """Keep one moment (``position``: its input partition and offset); True when the
        touchpoint's batch is full and should go now."""
        batch = self._batches.get(touchpoint)
        if batch is None:
            batch = self._batches[touchpoint] = []
        p, o = position if position is not None else (NO_POSITION, NO_POSITION)
        batch.append((at, failed, event_id, p, o))
        self.pending += 1
        return len(batch) >= self.max_batch

    def take(self, touchpoint: str) -> bytes | None:
        """One touchpoint's batch as a record value, and forget it."""
        batch = self._batches.pop(touchpoint, None)
        if not batch:
            return None
        self.pending -= len(batch)
        return encode_batch(batch)

    def drain(self) -> list[tuple[str, bytes]]:
        """Every touchpoint's batch as (touchpoint, record value); the buffer is empty after."""
        out = [(tp, encode_batch(batch)) for tp, batch in self._batches.items() if batch]
        self._batches.clear()
        self.pending = 0
        return out
