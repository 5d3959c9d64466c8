"""Touchpoint andon: a touchpoint's failure rate now against its own past.

Per touchpoint (organisation level) the state holds event-time buckets of
``bucket_s`` seconds: counts of moments and of failed moments. The *window* is the
last ``ceil(window_s / bucket_s)`` buckets up to the touchpoint's latest event time
(the current bucket included); a bucket that slides out of the window is folded into
the *baseline*, a slow exponentially weighted average of past buckets (failures and
moments averaged separately, rate = F / N; the first buckets are a plain average).
The baseline learns only while the status is green, so an incident does not become
the new normal.

Status, judged once the window holds ``min_window_events`` moments and the baseline
``min_baseline_events``:

* red   when rate ≥ red_ratio · baseline   and rate − baseline ≥ min_delta
* amber when rate ≥ amber_ratio · baseline and rate − baseline ≥ min_delta
* green otherwise.

Hysteresis: a level is kept until the rate falls below ``hysteresis`` times its
entry thresholds (both the ratio and the delta), so a rate hovering at a threshold
does not flap. Every change of status is a transition, numbered per touchpoint.

Counted once (:func:`judge_batch`): the state keeps, per input partition, the highest
offset of an observation applied (observations of one input partition come in offset
order: one scoring worker at a time sends them, a touchpoint's batches in order to the
touchpoint's partition of the internal topic, and the service's consumer reads a partition
in order across rebalances too). An observation at or below it is one
sent or read again after a crash: it counts nothing, and if it caused one of the
touchpoint's last :data:`MAX_KEPT_TRANSITIONS` transitions that transition is returned
again, so its alert (lost or not) is sent again with the same id and content.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from msgspec import Struct
from msgspec.structs import replace

from agents.domain.alert_ids import alert_id
from agents.domain.codec import Codec
from agents.domain.timestamps import iso
from agents.domain.tunables import ENV_VERSION, default

KIND = "touchpoint-status"
SCHEMA = "mot.alert.touchpoint-status/v1"
LEVELS = ("green", "amber", "red")
GREEN, AMBER, RED = 0, 1, 2


@dataclass(frozen=True, slots=True)
class StatusConfig:
    """Defaults from :mod:`agents.domain.tunables` (``MOT_TOUCHPOINT_*``)."""

    window_s: float = default("touchpoint_window_s")
    bucket_s: float = default("touchpoint_bucket_s")
    baseline_alpha: float = default("touchpoint_baseline_alpha")
    min_window_events: int = default("touchpoint_min_window_events")
    min_baseline_events: int = default("touchpoint_min_baseline_events")
    amber_ratio: float = default("touchpoint_amber_ratio")
    red_ratio: float = default("touchpoint_red_ratio")
    min_delta: float = default("touchpoint_min_delta")
    hysteresis: float = default("touchpoint_hysteresis")

    @property
    def window_buckets(self) -> int:
        return max(1, math.ceil(self.window_s / self.bucket_s))


class Figures(Struct, frozen=True, array_like=True, gc=False):
    """The numbers a status is judged on."""

    window_start: float
    window_end: float
    events: int
    failures: int
    rate: float
    baseline_rate: float | None
    baseline_events: int

    @property
    def judged(self) -> bool:
        return self.baseline_rate is not None


class Transition(Struct, frozen=True, array_like=True, gc=False):
    previous: int
    status: int
    seq: int  # the touchpoint's transition number, from 1
    at: float  # event time of the moment that caused it
    figures: Figures


class Bucket(Struct, array_like=True, gc=False):
    index: int  # floor(event time / bucket_s)
    events: int
    failures: int


class KeptTransition(Struct, array_like=True, gc=False):
    """One of the touchpoint's last transitions, with the input position of the
    observation that caused it (re-yielded when that observation comes again)."""

    partition: int
    offset: int
    event_id: str
    transition: Transition


MAX_KEPT_TRANSITIONS = 8


class TouchpointState(Struct, array_like=True, gc=False):
    """A touchpoint's andon state: a table value, encoded on every update (:data:`CODEC`)."""

    buckets: list[Bucket] = []  # the window's buckets, oldest first
    latest_at: float | None = None  # the touchpoint's latest event time
    baseline_failures: float = 0.0  # failures per bucket, averaged
    baseline_events: float = 0.0  # moments per bucket, averaged
    baseline_buckets: int = 0  # buckets folded into the baseline
    baseline_moments: int = 0  # moments folded into the baseline
    status: int = GREEN
    transitions: int = 0
    since: float | None = None  # event time of the last transition
    partition: int | None = None  # the input partition that serves it (:func:`with_partition`)
    # Counted once (:func:`judge_batch`): per input partition, the highest offset applied
    applied: dict[int, int] = {}
    kept: list[KeptTransition] = []  # the last transitions, oldest first
    counted: int = 0  # moments counted (late ones included), for the soak's check


def new_state() -> TouchpointState:
    return TouchpointState()


def from_v1(d: dict[str, Any]) -> TouchpointState:
    """A v1 state (the JSON dict with short keys) as today's."""
    return TouchpointState([Bucket(*b) for b in d["b"]], d["end"], d["F"], d["N"], d["k"],
                           d["bn"], d["s"], d["seq"], d["since"], d.get("p"),
                           {int(p): o for p, o in d.get("o", {}).items()},
                           [_kept_from_v1(k) for k in d.get("t", ())], d.get("n", 0))


def _kept_from_v1(k: list[Any]) -> KeptTransition:
    """A v1 kept transition: position, event id, then the transition's and its figures'
    fields, flat."""
    return KeptTransition(k[0], k[1], k[2], Transition(*k[3:7], Figures(*k[7:14])))


CODEC: Codec[TouchpointState] = Codec(TouchpointState, 2, from_v1)


def _judged(st: TouchpointState, window_events: int, cfg: StatusConfig) -> bool:
    """Whether the window and the baseline both have enough moments to judge."""
    return (window_events >= cfg.min_window_events
            and st.baseline_moments >= cfg.min_baseline_events and st.baseline_events > 0)


def figures(st: TouchpointState, cfg: StatusConfig) -> Figures:
    """Window and baseline figures of a touchpoint state (``baseline_rate`` is None until
    both have enough moments to judge)."""
    n = f = 0
    for b in st.buckets:
        n += b.events
        f += b.failures
    end = st.latest_at if st.latest_at is not None else 0.0
    end_idx = math.floor(end / cfg.bucket_s)
    start = (end_idx - cfg.window_buckets + 1) * cfg.bucket_s
    judged = _judged(st, n, cfg)
    return Figures(start, end, n, f, f / n if n else 0.0,
                   st.baseline_failures / st.baseline_events if judged else None,
                   st.baseline_moments)


def _over(rate: float, base: float, ratio: float, delta: float) -> bool:
    return rate >= base * ratio and rate - base >= delta


def level(rate: float, base: float, current: int, cfg: StatusConfig) -> int:
    """The status for ``rate`` against ``base``, given the current one (hysteresis)."""
    h = cfg.hysteresis
    if _over(rate, base, cfg.red_ratio, cfg.min_delta):
        return RED
    if current == RED and _over(rate, base, cfg.red_ratio * h, cfg.min_delta * h):
        return RED
    if _over(rate, base, cfg.amber_ratio, cfg.min_delta):
        return AMBER
    if current >= AMBER and _over(rate, base, cfg.amber_ratio * h, cfg.min_delta * h):
        return AMBER
    return GREEN


def observe(
    st: TouchpointState | None, at: float, failed: bool, cfg: StatusConfig
) -> tuple[TouchpointState, Transition | None, bool]:
    """Count one moment at event time ``at``; return the new state, the transition it
    caused (if any) and whether it was too late to count (older than the window). ``st``
    is left as it was (:func:`count_moment` is the same in place)."""
    state = new_state() if st is None else owned_copy(st)
    transition, late = count_moment(state, at, failed, cfg)
    return state, transition, late


def owned_copy(st: TouchpointState) -> TouchpointState:
    """A copy that :func:`count_moment` can change without changing ``st``."""
    return replace(st, buckets=[Bucket(b.index, b.events, b.failures) for b in st.buckets],
                   applied=dict(st.applied), kept=list(st.kept))


def count_moment(st: TouchpointState, at: float, failed: bool, cfg: StatusConfig
                 ) -> tuple[Transition | None, bool]:
    """:func:`observe` in place, for a caller that owns ``st`` (:func:`owned_copy`): the
    andon counts every moment of a batch into one copy instead of copying per moment.
    Returns the transition (if any) and whether the moment was too late to count (``st``
    is then unchanged)."""
    idx = math.floor(at / cfg.bucket_s)
    nb = cfg.window_buckets
    end = st.latest_at
    if end is not None and idx <= math.floor(end / cfg.bucket_s) - nb:
        return None, True
    buckets = st.buckets
    fail = 1 if failed else 0
    for i in range(len(buckets) - 1, -1, -1):  # the bucket is usually the last one
        b = buckets[i]
        if b.index == idx:
            b.events += 1
            b.failures += fail
            break
        if b.index < idx:
            buckets.insert(i + 1, Bucket(idx, 1, fail))
            break
    else:
        buckets.insert(0, Bucket(idx, 1, fail))
    if end is None or at > end:
        st.latest_at = at
        cutoff = idx - nb
        while buckets and buckets[0].index <= cutoff:
            gone = buckets.pop(0)
            if st.status == GREEN:  # learn the normal only while it is normal
                alpha = max(cfg.baseline_alpha, 1.0 / (st.baseline_buckets + 1))
                st.baseline_failures = (1 - alpha) * st.baseline_failures + alpha * gone.failures
                st.baseline_events = (1 - alpha) * st.baseline_events + alpha * gone.events
                st.baseline_buckets += 1
                st.baseline_moments += gone.events
    # judged as :func:`figures` judges, without building its struct unless it changes
    n = f = 0
    for b in buckets:
        n += b.events
        f += b.failures
    if not _judged(st, n, cfg):
        return None, False
    new = level(f / n if n else 0.0, st.baseline_failures / st.baseline_events, st.status, cfg)
    if new == st.status:
        return None, False
    st.transitions += 1
    t = Transition(st.status, new, st.transitions, at, figures(st, cfg))
    st.status = new
    st.since = at
    return t, False


def transition_id(touchpoint: str, seq: int) -> str:
    """The id of a touchpoint's ``seq``-th transition (one alert per transition)."""
    return alert_id(KIND, touchpoint, str(seq))


def status_alert(touchpoint: str, t: Transition, event_id: str, cfg: StatusConfig,
                 detected_at: float, rules_version: str = ENV_VERSION) -> dict[str, Any]:
    """The ops alert for one transition; its shape is
    ``schemas/touchpoint-status-alert.v1.schema.json``."""
    f = t.figures
    base = f.baseline_rate if f.baseline_rate is not None else 0.0
    return {
        "schema": SCHEMA,
        "alert_id": transition_id(touchpoint, t.seq),
        "kind": KIND,
        "severity": LEVELS[t.status],
        "touchpoint": touchpoint,
        "status": LEVELS[t.status],
        "previous_status": LEVELS[t.previous],
        "transition": t.seq,
        "occurred_at": iso(t.at),
        "detected_at": iso(detected_at),
        "rules_version": rules_version,
        "window": {"start": iso(f.window_start), "end": iso(f.window_end),
                   "seconds": cfg.window_buckets * cfg.bucket_s, "events": f.events,
                   "failures": f.failures, "failure_rate": round(f.rate, 6)},
        "baseline": {"failure_rate": round(base, 6), "events": f.baseline_events},
        "ratio": round(f.rate / base, 6) if base > 0 else None,
        "delta": round(f.rate - base, 6),
        "thresholds": {"amber_ratio": cfg.amber_ratio, "red_ratio": cfg.red_ratio,
                       "min_delta": cfg.min_delta, "hysteresis": cfg.hysteresis},
        "evidence": {"event_ids": [event_id]},
    }


@dataclass(frozen=True, slots=True)
class Judged:
    """What one batch of observations did to a touchpoint."""

    state: TouchpointState | None  # None: no state yet and nothing counted
    transitions: list[tuple[Transition, str, bool]]  # (transition, event id, re-sent), in order
    counted: int
    late: int
    duplicates: int

    @property
    def write(self) -> bool:
        """Whether the state is to be written: it changed, or a duplicate came (after a
        crash the local store may hold an update whose changelog record was lost)."""
        return self.state is not None and (self.counted > 0 or self.duplicates > 0)


def judge_batch(st: TouchpointState | None,
                observations: Iterable[tuple[float, bool, str, int, int]],
                cfg: StatusConfig | Callable[[float], StatusConfig]) -> Judged:
    """Judge a batch of (event time, failed, event id, input partition, input offset)
    in order; an observation already applied (by position) counts nothing and re-yields
    the transition it caused, if still kept. Partition < 0: position not known, always
    counted. ``cfg`` is the andon's settings, or what they are at an event time (the
    rules' version of each observation)."""
    config_at = cfg if callable(cfg) else (lambda _at, c=cfg: c)
    state = None if st is None else owned_copy(st)
    out: list[tuple[Transition, str, bool]] = []
    counted = late = duplicates = 0
    for at, failed, event_id, partition, offset in observations:
        if partition >= 0 and state is not None:
            high = state.applied.get(partition)
            if high is not None and offset <= high:
                duplicates += 1
                out.extend((k.transition, k.event_id, True) for k in state.kept
                           if k.partition == partition and k.offset == offset)
                continue
        if state is None:
            state = new_state()
        transition, was_late = count_moment(state, at, failed, config_at(at))  # the copy above
        if partition >= 0:
            state.applied[partition] = offset
        state.counted += 1
        counted += 1
        if was_late:
            late += 1
        elif transition is not None:
            out.append((transition, event_id, False))
            state.kept.append(KeptTransition(partition, offset, event_id, transition))
            del state.kept[:-MAX_KEPT_TRANSITIONS]
    return Judged(state, out, counted, late, duplicates)


def status_level(st: TouchpointState) -> int:
    """The touchpoint's current status (GREEN, AMBER or RED)."""
    return int(st.status)


def baseline_failure_rate(st: TouchpointState) -> float | None:
    """The baseline's failure rate as learnt so far (None before its first bucket), judged
    or not yet."""
    return st.baseline_failures / st.baseline_events if st.baseline_events > 0 else None


def with_partition(st: TouchpointState, partition: int) -> TouchpointState:
    """The state marked with the partition that serves it (the worker's gauge and page
    show only the touchpoints of the partitions they run)."""
    return replace(st, partition=partition)


def partition_of(st: TouchpointState) -> int | None:
    return st.partition


def status_view(st: TouchpointState, cfg: StatusConfig) -> dict[str, Any]:
    """One touchpoint's status for ``GET /touchpoints``."""
    f = figures(st, cfg)
    base = baseline_failure_rate(st)
    return {
        "status": LEVELS[st.status],
        "since": iso(st.since) if st.since is not None else None,
        "transitions": st.transitions,
        "judged": f.judged,
        "window": {"end": iso(f.window_end) if st.latest_at is not None else None,
                   "events": f.events, "failures": f.failures,
                   "failure_rate": round(f.rate, 6)},
        "baseline": {"failure_rate": round(base, 6) if base is not None else None,
                     "events": f.baseline_events},
    }
