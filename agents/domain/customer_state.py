"""A customer's state: its shape, its encoding and how today's reads yesterday's.

The state is a table value, encoded and written (to RocksDB and the changelog) on every
event, so it is typed (``msgspec.Struct``) and compact: MessagePack arrays
(``array_like``: fields by position, no names), times as epoch seconds, event ids as
63-bit hashes where a hash serves (deduplication, the kept alerts' causes) and as ids
only where an alert lists them, nothing stored twice (a recent moment's score after is
the next one's score before, the newest one's the state's score).

Stored form (:class:`StoredState`): the codec packs the state further without the rules
seeing it. A moment that is both a recent moment and a journey's is stored once (a table
of moments, referenced by index); the dedupe window leaves out the hashes of the recent
moments (its newest entries, recomputed from their ids); a journey's last event time is
its newest moment's; closed journeys' statuses are one-byte codes. A moment's time is
stored as whole milliseconds before the customer's latest event time when that gives
back the very same float (event times are whole milliseconds), and a quality that is a
whole number as an integer; anything else as the float itself.

Versions: encoded as ``[STATE_VERSION, stored state]`` (:mod:`agents.domain.codec`). Version 1
was a JSON object (orjson) with short keys; :func:`decode_state` still reads it
(:func:`from_v1`), so a worker upgraded over v1 tables and changelogs carries on and
writes version 2 from the next update of each customer.
"""

from __future__ import annotations

import math
from hashlib import blake2b
from typing import Any

from msgspec import Struct

from agents.domain.circles import CircleState, LifecycleRecord, record_from_v1
from agents.domain.circles import from_v1 as circles_from_v1
from agents.domain.codec import Codec
from agents.domain.journeys import (
    COMPLETED,
    DROPPED,
    EVICTED,
    ClosedJourney,
    Journey,
    JourneyMoment,
    Journeys,
    PackedDrop,
    SilenceCheck,
    earliest_deadline,
    packed_from_v1,
)
from agents.domain.journeys import from_v1 as journeys_from_v1

STATE_VERSION = 2


def event_key(event_id: str) -> int:
    """A stable 63-bit hash of the event id: compact in the state, collisions ~1e-17."""
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "big") >> 1


class RecentMoment(Struct, array_like=True):
    """One of the customer's last moments: alert context, and the outcome re-reported
    when the event is read again."""

    event_id: str
    at: float
    touchpoint: str
    quality: float
    score_before: float


class AlertedMoment(Struct, array_like=True):
    """A failed moment still in the dedupe window, with its alert's (rounded) scores."""

    event_key: int
    score_before: float
    score_after: float


class Position(Struct, array_like=True):
    """Where the last applied event was read: input partition and offset."""

    partition: int
    offset: int


class SentAlerts(Struct, array_like=True):
    """The alert records one event caused, kept while it is in the dedupe window so a
    re-read re-sends the same alerts."""

    event_key: int
    records: list[LifecycleRecord | PackedDrop]


class CustomerState(Struct, array_like=True):
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


# --- the stored form ------------------------------------------------------------------

Time = int | float  # int: milliseconds before the state's latest event time (see _time)
Number = int | float  # int: a whole float


class StoredMoment(Struct, array_like=True):
    event_id: str
    at: Time
    touchpoint: str
    quality: Number


def _base(at: float | None) -> int:
    return round(at * 1e6) if at is not None else 0


def _time(t: float, base_us: int) -> Time:
    """``t`` as whole milliseconds before ``base_us`` if that reads back exactly."""
    u = round(t * 1e6)
    if u / 1e6 == t and (base_us - u) % 1000 == 0:
        return (base_us - u) // 1000
    return t


def _read_time(x: Time, base_us: int) -> float:
    return (base_us - x * 1000) / 1e6 if isinstance(x, int) else x


def _number(q: float) -> Number:
    return int(q) if q.is_integer() and (q != 0 or math.copysign(1.0, q) > 0) else q


class StoredRecent(Struct, array_like=True):
    moment: int  # index in the stored moments
    score_before: float


class StoredJourneyMoment(Struct, array_like=True, omit_defaults=True):
    moment: int  # index in the stored moments
    step: int
    weight: float = 1.0


class StoredJourney(Struct, array_like=True, omit_defaults=True):
    journey_id: str
    kind: str | None
    started_at: Time
    steps: int
    moments: list[StoredJourneyMoment]
    last_at: float | None = None  # None: its newest moment's time (always so today)


class StoredClosed(Struct, array_like=True):
    journey_id: str
    status: int  # index in CLOSED_STATUSES


CLOSED_STATUSES = (COMPLETED, DROPPED, EVICTED)
_STATUS_CODE = {s: i for i, s in enumerate(CLOSED_STATUSES)}


class StoredState(Struct, array_like=True, omit_defaults=True):
    """:class:`CustomerState` as encoded (see the module's docstring)."""

    score: float
    at: float | None
    moments: int
    failures: int
    moment_table: list[StoredMoment]
    recent: list[StoredRecent]
    seen: list[int]  # the dedupe window, without the recent moments' hashes if ...
    seen_has_recent: bool  # ... this is False (they are its newest entries)
    alerted: list[AlertedMoment] = []
    position: Position | None = None
    circles: CircleState | None = None
    open_journeys: list[StoredJourney] = []
    closed_journeys: list[StoredClosed] = []
    checks: list[SilenceCheck] = []
    sent: list[SentAlerts] = []


def pack(state: CustomerState) -> StoredState:
    table: list[StoredMoment] = []
    index: dict[tuple[str, float, str, float], int] = {}
    base = _base(state.at)

    def ref(event_id: str, at: float, touchpoint: str, quality: float) -> int:
        key = (event_id, at, touchpoint, quality)
        i = index.get(key)
        if i is None:
            i = index[key] = len(table)
            table.append(StoredMoment(event_id, _time(at, base), touchpoint, _number(quality)))
        return i

    recent = [StoredRecent(ref(r.event_id, r.at, r.touchpoint, r.quality), r.score_before)
              for r in state.recent]
    seen = state.seen
    n = len(state.recent)
    # Both lists take every counted event and lose their oldest, so the recent moments'
    # hashes are the window's newest entries whenever it holds as many (the newest one is
    # checked, at the cost of one hash).
    tail = n > 0 and len(seen) >= n and seen[-1] == event_key(state.recent[-1].event_id)
    js = state.journeys
    open_: list[StoredJourney] = []
    closed: list[StoredClosed] = []
    checks: list[SilenceCheck] = []
    if js is not None:
        for jid, j in js.open.items():
            ms = [StoredJourneyMoment(ref(m.event_id, m.at, m.touchpoint, m.quality), m.step,
                                      m.weight) for m in j.moments]
            last = None if j.moments and j.moments[-1].at == j.last_at else j.last_at
            open_.append(StoredJourney(jid, j.kind, _time(j.started_at, base), j.steps, ms,
                                       last))
        closed = [StoredClosed(c.journey_id, _STATUS_CODE[c.status]) for c in js.closed]
        checks = js.checks
    return StoredState(state.score, state.at, state.moments, state.failures, table, recent,
                       seen[:-n] if tail else seen, not tail, state.alerted, state.position,
                       state.circles, open_, closed, checks, state.sent)


def unpack(st: StoredState) -> CustomerState:
    base = _base(st.at)
    table = [(m.event_id, _read_time(m.at, base), m.touchpoint, float(m.quality))
             for m in st.moment_table]
    recent = [RecentMoment(*table[r.moment], r.score_before) for r in st.recent]
    seen = st.seen if st.seen_has_recent else [*st.seen, *(event_key(r.event_id)
                                                          for r in recent)]
    journeys = None
    if st.open_journeys or st.closed_journeys or st.checks:
        open_ = {}
        for j in st.open_journeys:
            ms = [JourneyMoment(*table[jm.moment], jm.step, jm.weight) for jm in j.moments]
            open_[j.journey_id] = Journey(j.kind, _read_time(j.started_at, base),
                                          ms[-1].at if j.last_at is None else j.last_at,
                                          j.steps, ms)
        journeys = Journeys(open_, [ClosedJourney(c.journey_id, CLOSED_STATUSES[c.status])
                                    for c in st.closed_journeys], st.checks)
    return CustomerState(st.score, st.at, st.moments, st.failures, recent, seen, st.alerted,
                         st.position, st.circles, journeys, st.sent)


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
        recent=[RecentMoment(r[0], r[1], r[2], r[3], r[4]) for r in d["recent"]],
        seen=list(d["seen"]),
        alerted=[AlertedMoment(*a) for a in d.get("alerted", ())],
        position=None if pos is None else Position(pos[0], pos[1]),
        circles=None if not c else circles_from_v1(c),
        journeys=None if js is None else journeys_from_v1(js),
        sent=[SentAlerts(k, [packed_from_v1(r[1:]) if r[0] == "d" else record_from_v1(r)
                             for r in records])
              for k, records in d.get("sent", ())],
    )


CODEC: Codec[CustomerState] = Codec(CustomerState, STATE_VERSION, from_v1, StoredState,
                                    pack, unpack)


def in_vicious_circle(state: CustomerState | None) -> bool:
    return state is not None and state.circles is not None and state.circles.vicious is not None


def earliest_deadline_of(state: CustomerState | None, timeout_s: float) -> float | None:
    """When the first open journey of a customer's state times out (None: none open)."""
    return earliest_deadline(state.journeys if state else None, timeout_s)
