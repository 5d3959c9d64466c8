"""A customer's state: its shape, its encoding and how today's reads yesterday's.

The state is a table value, encoded and written (to RocksDB and the changelog) on every
event, so it is typed (``msgspec.Struct``) and compact: MessagePack arrays
(``array_like``: fields by position, no names), times as epoch seconds, event ids as
63-bit hashes where a hash serves (deduplication, the kept alerts' causes) and as ids
only where an alert lists them, no score stored twice (a recent moment's score after is
the next one's score before, the newest one's the state's score).

Encoded by msgspec's C encoder as the struct is (no packing step in Python: the state is
written on every event), uncompressed.

Versions: encoded as ``[STATE_VERSION, state]`` (:mod:`agents.domain.codec`).
Version 1 was a JSON object (orjson) with short keys; :func:`decode_state` still reads it
(:func:`from_v1`), so a worker upgraded over v1 tables and changelogs carries on and
writes version 2 from the next update of each customer.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Any

from msgspec import Struct

from agents.domain.circles import CircleState, LifecycleRecord, record_from_v1
from agents.domain.circles import from_v1 as circles_from_v1
from agents.domain.codec import Codec
from agents.domain.journeys import (
    Journeys,
    PackedDrop,
    earliest_deadline,
    packed_from_v1,
)
from agents.domain.journeys import from_v1 as journeys_from_v1

STATE_VERSION = 2


def event_key(event_id: str) -> int:
    """A stable 63-bit hash of the event id: compact in the state, collisions ~1e-17."""
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "big") >> 1


class RecentMoment(Struct, array_like=True, gc=False):
    """One of the customer's last moments: alert context, and the outcome re-reported
    when the event is read again."""

    event_id: str
    at: float
    touchpoint: str
    quality: float
    score_before: float
    offset: int | None = None  # the input offset it was counted at (None: not read from Kafka)


class AlertedMoment(Struct, array_like=True, gc=False):
    """A failed moment still in the dedupe window, with its alert's (rounded) scores."""

    event_key: int
    score_before: float
    score_after: float
    rules_version: str | None = None  # the rules its alert was computed under (None: before)


class Position(Struct, array_like=True, gc=False):
    """Where the last applied event was read: input partition and offset."""

    partition: int
    offset: int


class SentAlerts(Struct, array_like=True, gc=False):
    """The alert records one event caused, kept while it is in the dedupe window so a
    re-read re-sends the same alerts."""

    event_key: int
    records: list[LifecycleRecord | PackedDrop]
    rules_version: str | None = None  # the rules they were computed under (None: before)


class CustomerState(Struct, array_like=True, gc=False):
    score: float = 0.0  # the running score at ``at``
    at: float | None = None  # the customer's latest event time
    moments: int = 0
    failures: int = 0
    recent: list[RecentMoment] = []  # oldest first
    seen: list[int] = []  # hashes of the event ids in the dedupe window, oldest first
    alerted: list[AlertedMoment] = []
    position: Position | None = None
    circles: CircleState | None = None
    journeys: Journeys | None = None
    sent: list[SentAlerts] = []  # oldest first

    def score_after(self, i: int) -> float:
        """The score after the ``i``-th recent moment."""
        return self.recent[i + 1].score_before if i + 1 < len(self.recent) else self.score


def encode_state(state: CustomerState) -> bytes:
    return CODEC.encode(state)


def decode_state(raw: bytes) -> CustomerState:
    """A stored state, of this version or v1 (a JSON object)."""
    return CODEC.decode(raw)


def from_v1(d: dict[str, Any]) -> CustomerState:
    """A v1 state (the JSON dict) as today's; the same rules apply to it from then on."""
    pos = d.get("pos")
    c = d.get("c")
    js = d.get("journeys")
    return CustomerState(
        score=d["score"], at=d["at"], moments=d["moments"], failures=d["failures"],
        recent=[RecentMoment(r[0], r[1], r[2], r[3], r[4], r[6] if len(r) > 6 else None)
                for r in d["recent"]],
        seen=list(d["seen"]),
        alerted=[AlertedMoment(*a) for a in d.get("alerted", ())],
        position=None if pos is None else Position(pos[0], pos[1]),
        circles=None if not c else circles_from_v1(c),
        journeys=None if js is None else journeys_from_v1(js),
        sent=[SentAlerts(s[0], [packed_from_v1(r[1:]) if r[0] == "d" else record_from_v1(r)
                                for r in s[1]], s[2] if len(s) > 2 else None)
              for s in d.get("sent", ())],
    )


CODEC: Codec[CustomerState] = Codec(CustomerState, STATE_VERSION, from_v1)


def in_vicious_circle(state: CustomerState | None) -> bool:
    return state is not None and state.circles is not None and state.circles.vicious is not None


def earliest_deadline_of(state: CustomerState | None, timeout_s: float) -> float | None:
    """When the first open journey of a customer's state times out (None: none open)."""
    return earliest_deadline(state.journeys if state else None, timeout_s)
