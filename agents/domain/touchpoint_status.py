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
touchpoint's partition of the internal topic). An observation at or below it is one
sent or read again after a crash: it counts nothing, and if it caused one of the
touchpoint's last :data:`MAX_KEPT_TRANSITIONS` transitions that transition is returned
again, so its alert (lost or not) is sent again with the same id and content.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agents.domain.alert_ids import alert_id
from agents.domain.timestamps import iso
from agents.domain.tunables import ENV_VERSION, default

KIND = "touchpoint-status"
SCHEMA = "mot.alert.touchpoint-status/v1"
LEVELS = ("green", "amber", "red")
GREEN, AMBER, RED = 0, 1, 2
# Positions in a bucket entry.
B_INDEX, B_EVENTS, B_FAILURES = range(3)


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


@dataclass(frozen=True, slots=True)
class Figures:
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


@dataclass(frozen=True, slots=True)
class Transition:
    previous: int
    status: int
    seq: int  # the touchpoint's transition number, from 1
    at: float  # event time of the moment that caused it
    figures: Figures


# A touchpoint's state (keys short: a table value, serialized on every update):
#   b  buckets [index, events, failures] of the window, oldest first;  end  latest event time
#   F, N  baseline failures and moments per bucket (averaged);  k  buckets folded in
#   bn  moments folded into the baseline;  s  status (GREEN/AMBER/RED);  seq  transitions
#   since  event time of the last transition;  p  the input partition that serves it
#   (set by the worker, see :func:`with_partition`)
#   o, t, n  see APPLIED, KEPT, COUNTED below (counted once, :func:`judge_batch`)

APPLIED = "o"  # state key: {input partition (str): highest offset applied}
KEPT = "t"  # state key: the last transitions, compact (see _keep), oldest first
COUNTED = "n"  # state key: moments counted (late ones included), for the soak's check
MAX_KEPT_TRANSITIONS = 8


def new_state() -> dict[str, Any]:
    return {"b": [], "end": None, "F": 0.0, "N": 0.0, "k": 0, "bn": 0, "s": GREEN, "seq": 0,
            "since": None}


def figures(st: dict[str, Any], cfg: StatusConfig) -> Figures:
    """Window and baseline figures of a touchpoint state (``baseline_rate`` is None until
    both have enough moments to judge)."""
    n = f = 0
    for b in st["b"]:
        n += b[B_EVENTS]
        f += b[B_FAILURES]
    end = st["end"] if st["end"] is not None else 0.0
    end_idx = math.floor(end / cfg.bucket_s)
    start = (end_idx - cfg.window_buckets + 1) * cfg.bucket_s
    judged = n >= cfg.min_window_events and st["bn"] >= cfg.min_baseline_events and st["N"] > 0
    return Figures(start, end, n, f, f / n if n else 0.0,
                   st["F"] / st["N"] if judged else None, st["bn"])


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
    st: dict[str, Any] | None, at: float, failed: bool, cfg: StatusConfig
) -> tuple[dict[str, Any], Transition | None, bool]:
    """Count one moment at event time ``at``; return the new state, the transition it
    caused (if any) and whether it was too late to count (older than the window)."""
    old = new_state() if st is None else st
    idx = math.floor(at / cfg.bucket_s)
    nb = cfg.window_buckets
    end = old["end"]
    if end is not None and idx <= math.floor(end / cfg.bucket_s) - nb:
        return old, None, True
    buckets = [b for b in old["b"]]
    for i in range(len(buckets) - 1, -1, -1):  # the bucket is usually the last one
        b = buckets[i]
        if b[B_INDEX] == idx:
            buckets[i] = [idx, b[B_EVENTS] + 1, b[B_FAILURES] + (1 if failed else 0)]
            break
        if b[B_INDEX] < idx:
            buckets.insert(i + 1, [idx, 1, 1 if failed else 0])
            break
    else:
        buckets.insert(0, [idx, 1, 1 if failed else 0])
    st = {**old, "b": buckets}
    if end is None or at > end:
        st["end"] = at
        cutoff = math.floor(at / cfg.bucket_s) - nb
        while buckets and buckets[0][B_INDEX] <= cutoff:
            gone = buckets.pop(0)
            if st["s"] == GREEN:  # learn the normal only while it is normal
                alpha = max(cfg.baseline_alpha, 1.0 / (st["k"] + 1))
                st["F"] = (1 - alpha) * st["F"] + alpha * gone[B_FAILURES]
                st["N"] = (1 - alpha) * st["N"] + alpha * gone[B_EVENTS]
                st["k"] += 1
                st["bn"] += gone[B_EVENTS]
    fig = figures(st, cfg)
    if fig.baseline_rate is None:
        return st, None, False
    new = level(fig.rate, fig.baseline_rate, st["s"], cfg)
    if new == st["s"]:
        return st, None, False
    st["seq"] += 1
    t = Transition(st["s"], new, st["seq"], at, fig)
    st["s"] = new
    st["since"] = at
    return st, t, False


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

    state: dict[str, Any] | None  # None: no state yet and nothing counted
    transitions: list[tuple[Transition, str, bool]]  # (transition, event id, re-sent), in order
    counted: int
    late: int
    duplicates: int

    @property
    def write(self) -> bool:
        """Whether the state is to be written: it changed, or a duplicate came (after a
        crash the local store may hold an update whose changelog record was lost)."""
        return self.state is not None and (self.counted > 0 or self.duplicates > 0)


def _keep(t: Transition, event_id: str, partition: int, offset: int) -> list[Any]:
    f = t.figures
    return [partition, offset, event_id, t.previous, t.status, t.seq, t.at, f.window_start,
            f.window_end, f.events, f.failures, f.rate, f.baseline_rate, f.baseline_events]


def _kept(k: list[Any]) -> tuple[Transition, str]:
    fig = Figures(k[7], k[8], k[9], k[10], k[11], k[12], k[13])
    return Transition(k[3], k[4], k[5], k[6], fig), k[2]


def judge_batch(st: dict[str, Any] | None,
                observations: Iterable[tuple[float, bool, str, int, int]],
                cfg: StatusConfig | Callable[[float], StatusConfig]) -> Judged:
    """Judge a batch of (event time, failed, event id, input partition, input offset)
    in order; an observation already applied (by position) counts nothing and re-yields
    the transition it caused, if still kept. Partition < 0: position not known, always
    counted. ``cfg`` is the andon's settings, or what they are at an event time (the
    rules' version of each observation)."""
    config_at = cfg if callable(cfg) else (lambda _at, c=cfg: c)
    state = None if st is None else {**st, APPLIED: dict(st.get(APPLIED, {})),
                                     KEPT: list(st.get(KEPT, []))}
    out: list[tuple[Transition, str, bool]] = []
    counted = late = duplicates = 0
    for at, failed, event_id, partition, offset in observations:
        if partition >= 0 and state is not None:
            high = state[APPLIED].get(str(partition))
            if high is not None and offset <= high:
                duplicates += 1
                out.extend((*_kept(k), True) for k in state[KEPT]
                           if k[0] == partition and k[1] == offset)
                continue
        # observe() returns the state itself or a shallow copy: APPLIED and KEPT (copied
        # above, once per batch) are carried along and updated in place.
        new, transition, was_late = observe(state, at, failed, config_at(at))
        state = new if state is not None else {**new, APPLIED: {}, KEPT: []}
        if partition >= 0:
            state[APPLIED][str(partition)] = offset
        state[COUNTED] = state.get(COUNTED, 0) + 1
        counted += 1
        if was_late:
            late += 1
        elif transition is not None:
            out.append((transition, event_id, False))
            state[KEPT].append(_keep(transition, event_id, partition, offset))
            del state[KEPT][:-MAX_KEPT_TRANSITIONS]
    return Judged(state, out, counted, late, duplicates)


def status_level(st: dict[str, Any]) -> int:
    """The touchpoint's current status (GREEN, AMBER or RED)."""
    return int(st["s"])


def baseline_failure_rate(st: dict[str, Any]) -> float | None:
    """The baseline's failure rate as learnt so far (None before its first bucket), judged
    or not yet."""
    return st["F"] / st["N"] if st["N"] > 0 else None


def with_partition(st: dict[str, Any], partition: int) -> dict[str, Any]:
    """The state marked with the partition that serves it (the worker's gauge and page
    show only the touchpoints of the partitions they run)."""
    return {**st, "p": partition}


def partition_of(st: dict[str, Any]) -> int | None:
    return st.get("p")


def status_view(st: dict[str, Any], cfg: StatusConfig) -> dict[str, Any]:
    """One touchpoint's status for ``GET /touchpoints``."""
    f = figures(st, cfg)
    base = baseline_failure_rate(st)
    return {
        "status": LEVELS[st["s"]],
        "since": iso(st["since"]) if st["since"] is not None else None,
        "transitions": st["seq"],
        "judged": f.judged,
        "window": {"end": iso(f.window_end) if st["end"] is not None else None,
                   "events": f.events, "failures": f.failures,
                   "failure_rate": round(f.rate, 6)},
        "baseline": {"failure_rate": round(base, 6) if base is not None else None,
                     "events": f.baseline_events},
    }
