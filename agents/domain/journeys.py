"""Journeys: a customer's moments grouped by ``journey_id``, and how a journey ends.

A journey is *open* from its first moment until it is *completed* (a moment marked as
its end: the touchpoint is one of the configured end touchpoints, or the event carries
``attributes.journey_end: true``), or *dropped*: a moment says ``outcome: abandoned``,
or the journey has been silent for ``timeout_s`` of event time. Silence is measured
against a clock that only moves forward: the customer's own latest event time here,
and the stream's watermark when the worker's timer checks (:func:`expire_journeys`).

The journeys live in the customer's state dict under :data:`KEY`, bounded: at most
``max_open`` open journeys (the least recently active is evicted, without an alert),
``max_moments`` moments per journey (successes are evicted before failures, which
attribution needs), and the ids of the last ``closed_memory`` closed journeys, so a
straggling event of a closed journey does not open it again. A closed journey leaves
the state as soon as its alert is built.

A silence check that dropped journeys keeps them (packed, :func:`pack_dropped`) under
``"t"`` with its watermark, until the customer has had ``dedupe_window`` more events: a
check read again after a crash finds its journeys already closed and re-sends the same
drop-offs instead of none. At most :data:`MAX_KEPT_DROPS` are kept (a check's together).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.domain.attribution import BlameConfig
from agents.domain.tunables import default

KEY = "journeys"
OPEN, COMPLETED, DROPPED, EVICTED = "open", "completed", "dropped", "evicted"

# Positions in an open journey (a list, to keep the serialized state small).
J_KIND, J_STARTED, J_LAST, J_STEPS, J_MOMENTS = range(5)
# Positions in a journey moment.
M_EVENT_ID, M_AT, M_TOUCHPOINT, M_Q, M_STEP, M_WEIGHT = range(6)
# Positions in a silence check kept under "t": its watermark, the customer's events
# since, the journeys it dropped (packed).
T_MARK, T_AGE, T_DROPS = range(3)
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


@dataclass(frozen=True, slots=True)
class Dropped:
    """A journey that has just dropped, for :func:`agents.domain.drop_off.drop_off_alert`."""

    journey_id: str
    journey: list[Any]  # the journey as it was kept, its last moment included
    trigger: str  # "abandoned" or "timeout"
    trigger_moment: list[Any] | None  # the abandoned moment; None on a timeout
    clock: float  # event time at which it dropped (the abandonment, or the clock that expired it)


@dataclass(slots=True)
class JourneyChange:
    """What a record did to the customer's journeys: enough for the deadline index
    and the metrics."""

    had_open: bool
    open_count: int
    opened: bool = False
    earliest_deadline: float | None = None  # min over open journeys of last event + timeout
    closed: list[str] = field(default_factory=list)  # statuses of the journeys closed now
    dropped: list[Dropped] = field(default_factory=list)


def pack_dropped(d: Dropped) -> list[Any]:
    """A dropped journey as a JSON-ready list (the abandoning moment by its index when
    the journey still holds it), for :func:`unpack_dropped` to give it back."""
    trigger: Any = d.trigger_moment
    if trigger is not None:
        moments = d.journey[J_MOMENTS]
        trigger = next((i for i, m in enumerate(moments) if m is trigger), trigger)
    return [d.journey_id, d.journey, d.trigger, trigger, d.clock]


def unpack_dropped(p: list[Any]) -> Dropped:
    jid, journey, trigger, moment, clock = p
    if isinstance(moment, int):
        moment = journey[J_MOMENTS][moment]
    return Dropped(jid, journey, trigger, moment, clock)


def keep_newest(kept: list[list[Any]], count: int, limit: int) -> list[list[Any]]:
    """Drop the oldest entries (lists whose element ``count`` holds their items) while they
    hold more than ``limit`` items, always keeping the newest entry whole."""
    total = sum(len(k[count]) for k in kept)
    i = 0
    while total > limit and i < len(kept) - 1:
        total -= len(kept[i][count])
        i += 1
    return kept[i:] if i else kept


def journey_status(js: dict[str, Any] | None, journey_id: str) -> str | None:
    """``open``, ``completed``, ``dropped``, ``evicted`` or ``None`` (unknown or forgotten)."""
    if not js:
        return None
    if journey_id in js["open"]:
        return OPEN
    for jid, status in reversed(js["closed"]):
        if jid == journey_id:
            return status
    return None


def _earliest_deadline(open_: dict[str, list[Any]], timeout_s: float) -> float | None:
    if not open_:
        return None
    return min(j[J_LAST] for j in open_.values()) + timeout_s


def earliest_deadline(js: dict[str, Any] | None, timeout_s: float) -> float | None:
    """When the first of the customer's open journeys times out (None: none open)."""
    return _earliest_deadline(js["open"], timeout_s) if js else None


def earliest_deadline_of(state: dict[str, Any] | None, timeout_s: float) -> float | None:
    """When the first open journey of a customer's state times out (None: none open)."""
    return earliest_deadline(state.get(KEY) if state else None, timeout_s)


def _is_end(event: dict[str, Any], cfg: JourneyConfig) -> bool:
    if event["touchpoint"] in cfg.end_touchpoints:
        return True
    attrs = event.get("attributes")
    return isinstance(attrs, dict) and attrs.get("journey_end") is True


def _add_moment(moments: list[list[Any]], entry: list[Any], at: float, keep: int,
                failed_threshold: float) -> list[list[Any]]:
    """A new list with ``entry`` in event-time order (later moments' steps shift by one)."""
    n = len(moments)
    if n == 0 or moments[-1][M_AT] <= at:  # the usual case: in order
        entry[M_STEP] = moments[-1][M_STEP] + 1 if n else 0
        new = [*moments, entry]
    else:
        i = n
        while i > 0 and moments[i - 1][M_AT] > at:
            i -= 1
        entry[M_STEP] = moments[i - 1][M_STEP] + 1 if i else moments[0][M_STEP]
        later = [[*m[:M_STEP], m[M_STEP] + 1, *m[M_STEP + 1:]] for m in moments[i:]]
        new = [*moments[:i], entry, *later]
    if len(new) > keep:
        # keep the failures (attribution needs them) and the newest moment
        drop = next((k for k in range(len(new) - 1) if new[k][M_Q] >= failed_threshold), 0)
        del new[drop]
    return new


def _close(js_closed: list[list[str]], jid: str, status: str, memory: int) -> list[list[str]]:
    closed = [*js_closed, [jid, status]]
    return closed[len(closed) - memory:] if len(closed) > memory else closed


def _expire_into(open_: dict[str, list[Any]], closed: list[list[str]], clock: float,
                 change: JourneyChange, cfg: JourneyConfig) -> list[list[str]]:
    """Drop (in place in ``open_``) every journey silent for ``timeout_s`` at ``clock``."""
    for jid in [j for j, v in open_.items() if clock - v[J_LAST] >= cfg.timeout_s]:
        change.dropped.append(Dropped(jid, open_.pop(jid), "timeout", None, clock))
        change.closed.append(DROPPED)
        closed = _close(closed, jid, DROPPED, cfg.closed_memory)
    return closed


def on_moment(
    js: dict[str, Any] | None,
    event: dict[str, Any],
    occurred_at: float,
    q: float,
    customer_clock: float,
    cfg: JourneyConfig,
    failed_threshold: float,
    dedupe_window: int = 64,
) -> tuple[dict[str, Any] | None, JourneyChange | None]:
    """Apply one counted (not duplicate) moment to the customer's journeys.

    Returns the new journeys value (``None``: nothing to keep) and what changed, or
    ``(js, None)`` when the event touches no journey. ``customer_clock`` is the
    customer's latest event time: other journeys silent for the timeout by then drop.
    Silence checks kept for re-sending age by one event (``dedupe_window`` at most).
    """
    jid = event.get("journey_id")
    if jid is None and not js:
        return js, None
    open_: dict[str, list[Any]] = dict(js["open"]) if js else {}
    closed: list[list[str]] = js["closed"] if js else []
    change = JourneyChange(had_open=bool(open_), open_count=0)
    if jid is not None and journey_status(js, jid) not in (COMPLETED, DROPPED):
        journey = open_.get(jid)
        entry = [event["event_id"], occurred_at, event["touchpoint"], q, 0,
                 event.get("weight", 1.0)]
        if journey is None:
            journey = [event.get("journey"), occurred_at, occurred_at, 1,
                       _add_moment([], entry, occurred_at, cfg.max_moments, failed_threshold)]
            change.opened = True
        else:
            journey = [journey[J_KIND] or event.get("journey"),
                       min(journey[J_STARTED], occurred_at), max(journey[J_LAST], occurred_at),
                       journey[J_STEPS] + 1,
                       _add_moment(journey[J_MOMENTS], entry, occurred_at, cfg.max_moments,
                                   failed_threshold)]
        if event.get("outcome") == "abandoned":
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
                stale = min(open_, key=lambda k: open_[k][J_LAST])
                del open_[stale]
                change.closed.append(EVICTED)
                closed = _close(closed, stale, EVICTED, cfg.closed_memory)
    if open_:
        closed = _expire_into(open_, closed, customer_clock, change, cfg)
    change.open_count = len(open_)
    change.earliest_deadline = _earliest_deadline(open_, cfg.timeout_s)
    checks = js.get("t") if js else None
    if checks:
        checks = [[c[T_MARK], c[T_AGE] + 1, c[T_DROPS]] for c in checks
                  if c[T_AGE] + 1 < dedupe_window]
    return _journeys_value(open_, closed, checks), change


def _journeys_value(open_: dict[str, list[Any]], closed: list[list[str]],
                    checks: list[list[Any]] | None) -> dict[str, Any] | None:
    if checks:
        return {"open": open_, "closed": closed, "t": checks}
    if not open_ and not closed:
        return None
    return {"open": open_, "closed": closed}


def expire_journeys(
    js: dict[str, Any] | None,
    watermark: float,
    cfg: JourneyConfig,
) -> tuple[dict[str, Any] | None, JourneyChange]:
    """Drop the journeys silent for the timeout at ``watermark`` (the stream's event time),
    for a customer who may send nothing more.

    A check with the watermark of a kept one (the same check, read again after a crash)
    puts that check's journeys first in ``change.dropped`` again, so their drop-offs are
    re-sent with the same ids; ``change.closed`` lists only the journeys closed now.
    """
    open_: dict[str, list[Any]] = dict(js["open"]) if js else {}
    closed: list[list[str]] = js["closed"] if js else []
    change = JourneyChange(had_open=bool(open_), open_count=0)
    closed = _expire_into(open_, closed, watermark, change, cfg)
    change.open_count = len(open_)
    change.earliest_deadline = _earliest_deadline(open_, cfg.timeout_s)
    checks: list[list[Any]] = js.get("t", []) if js else []
    same = next((c for c in checks if c[T_MARK] == watermark), None)
    if change.dropped:
        packed = [pack_dropped(d) for d in change.dropped]
        if same is None:
            checks = [*checks, [watermark, 0, packed]]
        else:
            checks = [c if c is not same else [watermark, 0, [*same[T_DROPS], *packed]]
                      for c in checks]
        checks = keep_newest(checks, T_DROPS, MAX_KEPT_DROPS)
    if same is not None:
        change.dropped[:0] = [unpack_dropped(p) for p in same[T_DROPS]]
    return _journeys_value(open_, closed, checks), change


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
