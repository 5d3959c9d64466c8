"""Journeys: a customer's moments grouped by ``journey_id``, and how a journey ends.

A journey is *open* from its first moment until it is *completed* (a moment marked as
its end: the touchpoint is one of the configured end touchpoints, or the event carries
``attributes.journey_end: true``), or *dropped*: a moment says ``outcome: abandoned``,
or the journey has been silent for ``timeout_s`` of event time. Silence is measured
against a clock that only moves forward: the customer's own latest event time here,
and the stream's watermark when the worker's timer checks (:func:`expire_journeys`).

The journeys (:class:`Journeys`) are part of the customer's state, bounded: at most
``max_open`` open journeys (the least recently active is evicted, without an alert),
``max_moments`` moments per journey (successes are evicted before failures, which
attribution needs), and the ids of the last ``closed_memory`` closed journeys, so a
straggling event of a closed journey does not open it again. A closed journey leaves
the state as soon as its alert is built.

A silence check that dropped journeys keeps them (packed, :func:`pack_dropped`) as a
:class:`SilenceCheck` with its watermark, until the customer has had ``dedupe_window``
more events: a check read again after a crash finds its journeys already closed and
re-sends the same drop-offs instead of none. At most :data:`MAX_KEPT_DROPS` are kept
(a check's together).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
from msgspec import Struct
from msgspec.structs import replace

from agents.domain.attribution import BlameConfig
from agents.domain.tunables import default

if TYPE_CHECKING:
    from schemas.touchpoint_event import TouchpointEvent

OPEN, COMPLETED, DROPPED, EVICTED = "open", "completed", "dropped", "evicted"
MAX_KEPT_DROPS = 8


def touchpoint_list(raw: str) -> frozenset[str]:
    """``"a, b,"`` → ``{"a", "b"}``: how ``MOT_JOURNEY_END_TOUCHPOINTS`` is read."""
    return frozenset(t.strip() for t in raw.split(",") if t.strip())


@dataclass(frozen=True, slots=True)
class JourneyConfig:
    """Defaults from :mod:`agents.domain.tunables` (``MOT_JOURNEY_*``)."""

    timeout_s: float = default("journey_timeout_s")
    end_touchpoints: frozenset[str] = touchpoint_list(default("journey_end_touchpoints"))
    max_open: int = default("journey_max_open")
    max_moments: int = default("journey_max_moments")
    closed_memory: int = 16  # not a setting: ids of closed journeys kept against stragglers
    blame: BlameConfig = field(default_factory=BlameConfig)


class JourneyMoment(Struct, array_like=True, gc=False):
    """A moment of a journey, as its drop-off alert lists it (the id is evidence)."""

    event_id: str
    at: float
    touchpoint: str
    quality: float
    step: int  # its position in the journey, in event-time order
    weight: float


class Journey(Struct, array_like=True, gc=False):
    kind: str | None  # the event's ``journey`` (purchase, support, …), if it said
    started_at: float
    last_at: float
    steps: int  # moments counted, kept or not
    moments: list[JourneyMoment]  # kept moments, in event-time order


class ClosedJourney(Struct, array_like=True, gc=False):
    journey_id: str
    status: str  # COMPLETED, DROPPED or EVICTED


class PackedDrop(Struct, tag="d", array_like=True, gc=False):
    """A dropped journey as kept for re-sending its drop-off (:func:`pack_dropped`)."""

    journey_id: str
    journey: Journey
    trigger: str
    moment_index: int | None  # the abandoning moment, by its index in the journey ...
    moment: JourneyMoment | None = None  # ... or itself when the journey no longer holds it
    clock: float = 0.0


class SilenceCheck(Struct, array_like=True, gc=False):
    """A silence check that dropped journeys, kept so that a re-read re-sends them."""

    watermark: float
    age: int  # the customer's events since
    drops: list[PackedDrop]


class Journeys(Struct, array_like=True, gc=False):
    open: dict[str, Journey]  # by journey id, in the order they opened
    closed: list[ClosedJourney]  # the last ``closed_memory``, oldest first
    checks: list[SilenceCheck] = []


class Dropped(Struct, frozen=True):
    """A journey that has just dropped, for :func:`agents.domain.drop_off.drop_off_alert`."""

    journey_id: str
    journey: Journey  # the journey as it was kept, its last moment included
    trigger: str  # "abandoned" or "timeout"
    trigger_moment: JourneyMoment | None  # the abandoned moment; None on a timeout
    clock: float  # event time at which it dropped (the abandonment, or the clock that expired it)


class JourneyChange(Struct):
    """What a record did to the customer's journeys: enough for the deadline index
    and the metrics."""

    had_open: bool
    open_count: int
    opened: bool = False
    earliest_deadline: float | None = None  # min over open journeys of last event + timeout
    closed: list[str] = msgspec.field(default_factory=list)  # statuses of the journeys closed now
    dropped: list[Dropped] = msgspec.field(default_factory=list)


def pack_dropped(d: Dropped) -> PackedDrop:
    """A dropped journey as kept in the state (the abandoning moment by its index when
    the journey still holds it), for :func:`unpack_dropped` to give it back."""
    trigger = d.trigger_moment
    if trigger is None:
        return PackedDrop(d.journey_id, d.journey, d.trigger, None, None, d.clock)
    index = next((i for i, m in enumerate(d.journey.moments) if m is trigger), None)
    return PackedDrop(d.journey_id, d.journey, d.trigger, index,
                      trigger if index is None else None, d.clock)


def unpack_dropped(p: PackedDrop) -> Dropped:
    moment = p.moment
    if p.moment_index is not None:
        moment = p.journey.moments[p.moment_index]
    return Dropped(p.journey_id, p.journey, p.trigger, moment, p.clock)


K = TypeVar("K")


def keep_newest(kept: list[K], items: Callable[[K], Sequence[Any]], limit: int) -> list[K]:
    """Drop the oldest entries while they hold more than ``limit`` items (``items`` gives
    an entry's), always keeping the newest entry whole."""
    total = sum(len(items(k)) for k in kept)
    i = 0
    while total > limit and i < len(kept) - 1:
        total -= len(items(kept[i]))
        i += 1
    return kept[i:] if i else kept


def journey_status(js: Journeys | None, journey_id: str) -> str | None:
    """``open``, ``completed``, ``dropped``, ``evicted`` or ``None`` (unknown or forgotten)."""
    if js is None:
        return None
    if journey_id in js.open:
        return OPEN
    for c in reversed(js.closed):
        if c.journey_id == journey_id:
            return c.status
    return None


def _earliest_deadline(open_: dict[str, Journey], timeout_s: float) -> float | None:
    if not open_:
        return None
    return min(j.last_at for j in open_.values()) + timeout_s


def earliest_deadline(js: Journeys | None, timeout_s: float) -> float | None:
    """When the first of the customer's open journeys times out (None: none open)."""
    return _earliest_deadline(js.open, timeout_s) if js else None


def _is_end(event: TouchpointEvent, cfg: JourneyConfig) -> bool:
    return event.touchpoint in cfg.end_touchpoints or event.journey_end


def _add_moment(moments: list[JourneyMoment], entry: JourneyMoment, at: float, keep: int,
                failed_threshold: float) -> list[JourneyMoment]:
    """A new list with ``entry`` in event-time order (later moments' steps shift by one)."""
    n = len(moments)
    if n == 0 or moments[-1].at <= at:  # the usual case: in order
        entry.step = moments[-1].step + 1 if n else 0
        new = [*moments, entry]
    else:
        i = n
        while i > 0 and moments[i - 1].at > at:
            i -= 1
        entry.step = moments[i - 1].step + 1 if i else moments[0].step
        later = [replace(m, step=m.step + 1) for m in moments[i:]]
        new = [*moments[:i], entry, *later]
    if len(new) > keep:
        # keep the failures (attribution needs them) and the newest moment
        drop = next((k for k in range(len(new) - 1) if new[k].quality >= failed_threshold), 0)
        del new[drop]
    return new


def _close(js_closed: list[ClosedJourney], jid: str, status: str, memory: int
           ) -> list[ClosedJourney]:
    closed = [*js_closed, ClosedJourney(jid, status)]
    return closed[len(closed) - memory:] if len(closed) > memory else closed


def _expire_into(open_: dict[str, Journey], closed: list[ClosedJourney], clock: float,
                 change: JourneyChange, cfg: JourneyConfig) -> list[ClosedJourney]:
    """Drop (in place in ``open_``) every journey silent for ``timeout_s`` at ``clock``."""
    for jid in [j for j, v in open_.items() if clock - v.last_at >= cfg.timeout_s]:
        change.dropped.append(Dropped(jid, open_.pop(jid), "timeout", None, clock))
        change.closed.append(DROPPED)
        closed = _close(closed, jid, DROPPED, cfg.closed_memory)
    return closed


def on_moment(
    js: Journeys | None,
    event: TouchpointEvent,
    occurred_at: float,
    q: float,
    customer_clock: float,
    cfg: JourneyConfig,
    failed_threshold: float,
    dedupe_window: int = 64,
) -> tuple[Journeys | None, JourneyChange | None]:
    """Apply one counted (not duplicate) moment to the customer's journeys.

    Returns the new journeys value (``None``: nothing to keep) and what changed, or
    ``(js, None)`` when the event touches no journey. ``customer_clock`` is the
    customer's latest event time: other journeys silent for the timeout by then drop.
    Silence checks kept for re-sending age by one event (``dedupe_window`` at most).
    """
    jid = event.journey_id or None
    if jid is None and js is None:
        return js, None
    open_: dict[str, Journey] = dict(js.open) if js else {}
    closed: list[ClosedJourney] = js.closed if js else []
    change = JourneyChange(had_open=bool(open_), open_count=0)
    if jid is not None and journey_status(js, jid) not in (COMPLETED, DROPPED):
        journey = open_.get(jid)
        entry = JourneyMoment(event.event_id, occurred_at, event.touchpoint, q, 0,
                              event.weight_or_default)
        if journey is None:
            journey = Journey(event.journey or None, occurred_at, occurred_at, 1,
                              _add_moment([], entry, occurred_at, cfg.max_moments,
                                          failed_threshold))
            change.opened = True
        else:
            journey = Journey(journey.kind or event.journey or None,
                              min(journey.started_at, occurred_at),
                              max(journey.last_at, occurred_at), journey.steps + 1,
                              _add_moment(journey.moments, entry, occurred_at,
                                          cfg.max_moments, failed_threshold))
        if event.outcome == "abandoned":
            change.dropped.append(Dropped(jid, journey, "abandoned", entry, occurred_at))
            change.closed.append(DROPPED)
            closed = _close(closed, jid, DROPPED, cfg.closed_memory)
            open_.pop(jid, None)
        elif _is_end(event, cfg):
            change.closed.append(COMPLETED)
            closed = _close(closed, jid, COMPLETED, cfg.closed_memory)
            open_.pop(jid, None)
        else:
            open_[jid] = journey
            if len(open_) > cfg.max_open:
                stale = min(open_, key=lambda k: open_[k].last_at)
                del open_[stale]
                change.closed.append(EVICTED)
                closed = _close(closed, stale, EVICTED, cfg.closed_memory)
    if open_:
        closed = _expire_into(open_, closed, customer_clock, change, cfg)
    change.open_count = len(open_)
    change.earliest_deadline = _earliest_deadline(open_, cfg.timeout_s)
    checks = js.checks if js else []
    if checks:
        checks = [SilenceCheck(c.watermark, c.age + 1, c.drops) for c in checks
                  if c.age + 1 < dedupe_window]
    return _journeys_value(open_, closed, checks), change


def _journeys_value(open_: dict[str, Journey], closed: list[ClosedJourney],
                    checks: list[SilenceCheck]) -> Journeys | None:
    if not checks and not open_ and not closed:
        return None
    return Journeys(open_, closed, checks)


def expire_journeys(
    js: Journeys | None,
    watermark: float,
    cfg: JourneyConfig,
) -> tuple[Journeys | None, JourneyChange]:
    """Drop the journeys silent for the timeout at ``watermark`` (the stream's event time),
    for a customer who may send nothing more.

    A check with the watermark of a kept one (the same check, read again after a crash)
    puts that check's journeys first in ``change.dropped`` again, so their drop-offs are
    re-sent with the same ids; ``change.closed`` lists only the journeys closed now.
    """
    open_: dict[str, Journey] = dict(js.open) if js else {}
    closed: list[ClosedJourney] = js.closed if js else []
    change = JourneyChange(had_open=bool(open_), open_count=0)
    closed = _expire_into(open_, closed, watermark, change, cfg)
    change.open_count = len(open_)
    change.earliest_deadline = _earliest_deadline(open_, cfg.timeout_s)
    checks: list[SilenceCheck] = js.checks if js else []
    same = next((c for c in checks if c.watermark == watermark), None)
    if change.dropped:
        packed = [pack_dropped(d) for d in change.dropped]
        if same is None:
            checks = [*checks, SilenceCheck(watermark, 0, packed)]
        else:
            checks = [c if c is not same else SilenceCheck(watermark, 0, [*same.drops, *packed])
                      for c in checks]
        checks = keep_newest(checks, lambda c: c.drops, MAX_KEPT_DROPS)
    if same is not None:
        change.dropped[:0] = [unpack_dropped(p) for p in same.drops]
    return _journeys_value(open_, closed, checks), change


def _journey_from_v1(j: list[Any]) -> Journey:
    return Journey(j[0], j[1], j[2], j[3], [JourneyMoment(*m) for m in j[4]])


def packed_from_v1(p: list[Any]) -> PackedDrop:
    """A v1 packed drop (a list) as its struct."""
    jid, journey, trigger, moment, clock = p
    if isinstance(moment, int) or moment is None:
        return PackedDrop(jid, _journey_from_v1(journey), trigger, moment, None, clock)
    return PackedDrop(jid, _journey_from_v1(journey), trigger, None, JourneyMoment(*moment),
                      clock)


def from_v1(js: dict[str, Any]) -> Journeys:
    """The journeys of a v1 (JSON dict) customer state."""
    return Journeys({jid: _journey_from_v1(j) for jid, j in js["open"].items()},
                    [ClosedJourney(*c) for c in js["closed"]],
                    [SilenceCheck(c[0], c[1], [packed_from_v1(p) for p in c[2]])
                     for c in js.get("t", ())])


def stream_watermark(max_event_time: float, last_event_wall: float, now: float,
                     idle_advance_s: float) -> float:
    """The event-time clock of one input partition, as the silence check reads it.

    It is the latest event time seen on the partition (each event clamped to the wall
    clock when it arrived, so one event stamped in the future cannot expire journeys
    early). When the partition has received nothing for ``idle_advance_s`` of wall
    time, the clock moves on with the wall clock from then, so silent journeys are
    still noticed when the whole stream goes quiet.
    """
    return max_event_time + max(0.0, now - last_event_wall - idle_advance_s)
