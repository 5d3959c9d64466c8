"""Counted moments on their way to the touchpoint andon, a batch per touchpoint.

The scoring agent partitions by customer, the andon by touchpoint, so every counted
moment crosses an internal topic. One record per moment would cost a produce, a consume
and a table write per input event; the scoring worker instead gathers its moments per
touchpoint and sends each touchpoint's batch as one record. The andon judges the batch
moment by moment, in the order the scoring worker counted them, so the statuses and
the transitions (with the event that caused each) are the ones single records give.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

Observation = tuple[float, bool, str]  # event time, failed, event id

_HEAD = struct.Struct("<d?H")  # event time, failed, length of the UTF-8 event id


def encode_batch(observations: list[Observation]) -> bytes:
    parts = []
    for at, failed, event_id in observations:
        eid = event_id.encode()
        parts.append(_HEAD.pack(at, failed, len(eid)))
        parts.append(eid)
    return b"".join(parts)


def decode_batch(value: bytes) -> Iterator[Observation]:
    """The observations of a record; ``struct.error``/``ValueError`` on a malformed one."""
    view = memoryview(value)
    pos, size, end = 0, _HEAD.size, len(value)
    while pos < end:
        at, failed, n = _HEAD.unpack_from(view, pos)
        pos += size
        if pos + n > end:
            raise ValueError("observation batch truncated")
        yield at, failed, bytes(view[pos:pos + n]).decode()
        pos += n


class ObservationBuffer:
    """Moments counted since the last flush, per touchpoint, in counting order."""

    __slots__ = ("_batches", "max_batch", "pending")

    def __init__(self, max_batch: int) -> None:
        self._batches: dict[str, list[Observation]] = {}
        self.max_batch = max_batch
        self.pending = 0

    def add(self, touchpoint: str, at: float, failed: bool, event_id: str) -> bool:
        """Keep one moment; True when the touchpoint's batch is full and should go now."""
        batch = self._batches.get(touchpoint)
        if batch is None:
            batch = self._batches[touchpoint] = []
        batch.append((at, failed, event_id))
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
