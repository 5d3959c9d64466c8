"""Normann's circles, per customer, in event time: the rules and their lifecycle alerts.

A **vicious circle** opens when failed moments chain (≥ N failures within a window W of
event time while the running score is below a threshold), escalates amber → red when
the chain grows to R failures or a recovery attempt fails, and resolves when the score
is back at or above the threshold. A **virtuous circle** opens when delight repeats
(≥ V consecutive delights in event time and no failure in the quiet period before the
newest of them) and ends at the next failed moment.

The state the rules need (:class:`CircleState`) is part of the customer's state (one
table value, encoded on every update), so it is small and bounded: the failure times of
the current chain (at most ``vicious_memory``, none older than W + the lateness bound),
the newest V delights, a few event times and counters. No timers: every decision is
taken when an event arrives, on event time, so the stream and an offline replay of the
same records take the same decisions.

Ids are deterministic and independent of which event tipped a transition: a circle is
the customer's n-th circle of its kind, ``alert_id = uuid5(kind, customer, n,
lifecycle)``. Reordering the failures of a chain (or the good moments that end it)
yields the same ids; see the README's out-of-order policy for the exact claim.

:func:`update_circles` (the rules :func:`vicious_circle` and :func:`virtuous_circle`)
returns each transition as a compact *lifecycle record* (:class:`ViciousRecord`,
:class:`VirtuousRecord`: everything in the alert that the causing event does not carry) and
:func:`lifecycle_alert` renders it with that event. The customer's state keeps the
records of its last transitions, so a duplicate of the causing event re-sends the very
same alerts (``agents.domain.moment_processor``).
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from msgspec import Struct
from msgspec.structs import replace

from agents.domain.alert_ids import alert_id
from agents.domain.timestamps import iso
from agents.domain.tunables import DAY, ENV_VERSION, HOUR, default

if TYPE_CHECKING:
    from schemas.touchpoint_event import TouchpointEvent

VICIOUS = "vicious-circle"
VIRTUOUS = "virtuous-circle"
VICIOUS_SCHEMA = "mot.alert.vicious-circle/v1"
VIRTUOUS_SCHEMA = "mot.alert.virtuous-circle/v1"
KINDS = (VICIOUS, VIRTUOUS)

MAX_RECOVERIES = 8  # successful recovery attempts remembered per open circle, as evidence


@dataclass(frozen=True, slots=True)
class CircleConfig:
    """The circle rules (DOMAIN.md); defaults from :mod:`agents.domain.tunables`, whose
    hours and days are seconds here."""

    vicious_failures: int = default("vicious_failures")
    vicious_window_s: float = default("vicious_window_h") * HOUR
    vicious_red_failures: int = default("vicious_red_failures")
    vicious_score_threshold: float = default("vicious_score_threshold")
    vicious_cooldown_s: float = default("vicious_cooldown_h") * HOUR
    vicious_memory: int = default("vicious_memory")
    virtuous_moments: int = default("virtuous_moments")
    virtuous_quiet_s: float = default("virtuous_quiet_days") * DAY


def circle_id(kind: str, customer_id: str, n: int) -> str:
    return alert_id(kind, customer_id, str(n))


def lifecycle_id(kind: str, customer_id: str, n: int, lifecycle: str) -> str:
    return alert_id(kind, customer_id, str(n), lifecycle)


def has_chain(times: list[float], n: int, window_s: float) -> bool:
    """True when some span of ``window_s`` holds ``n`` of the (sorted) times."""
    return any(times[i + n - 1] - times[i] <= window_s for i in range(len(times) - n + 1))


class CircleMoment(Struct, frozen=True):
    """One new (not duplicate, accepted) moment, as the circle rules see it."""

    event: TouchpointEvent  # the event: its id and ``recovery_of`` are evidence
    occurred_at: float  # its event time
    failed: bool
    delight: bool
    score: float  # the customer's running score after the moment
    at: float  # the customer's latest event time after the moment

    @property
    def event_id(self) -> str:
        return self.event.event_id

    @property
    def recovery_of(self) -> str | None:
        """The failed moment this one tries to repair, if it says so."""
        return self.event.recovery_of or None


# The circle state: part of the customer's state (a table value, encoded as MessagePack
# arrays on every update, see :mod:`agents.domain.customer_state`). Event ids are kept
# where an alert lists them as evidence.


class ChainFailure(Struct, array_like=True, gc=False, order=True):
    """A failed moment of the current chain; sorted by event time, then id."""

    at: float
    event_id: str
    recovery_of: str = ""  # the moment a failed recovery attempt tried to repair, else ""


class Recovery(Struct, array_like=True, gc=False):
    """A recovery attempt: the attempt's event id and the failed moment it was about."""

    event_id: str
    recovery_of: str


class Delight(Struct, array_like=True, gc=False, order=True):
    at: float
    event_id: str


class OpenVicious(Struct, array_like=True, gc=False):
    number: int  # the customer's n-th vicious circle
    opened_at: float
    chain: int  # failures in its chain so far
    red: bool = False
    recoveries: list[Recovery] = []  # successful recovery attempts, newest last


class OpenVirtuous(Struct, array_like=True, gc=False):
    number: int
    opened_at: float


class CircleState(Struct, array_like=True, gc=False):
    """What the circle rules remember of a customer."""

    last_failure_at: float | None = None  # latest failed moment (the virtuous quiet period)
    chain: list[ChainFailure] = []  # the current chain's failures, sorted
    vicious: OpenVicious | None = None
    vicious_opened: int = 0
    last_resolved_failure_at: float | None = None  # last failure of the last resolved one
    delights: list[Delight] = []  # the newest delights, sorted
    latest_other_at: float | None = None  # latest moment that was no delight
    virtuous: OpenVirtuous | None = None
    virtuous_opened: int = 0


class Resolution(Struct, array_like=True, gc=False):
    resolved_at: float
    cooldown_until: float
    recoveries: list[Recovery]


class ViciousRecord(Struct, tag="v", array_like=True, gc=False):
    """A vicious circle's transition: everything its alert holds that the causing event
    does not carry (:func:`lifecycle_alert`)."""

    lifecycle: str
    number: int
    opened_at: float
    chain: int
    red: bool
    score: float  # rounded as in the alert
    evidence: list[str]
    failed_recovery: Recovery | None = None  # ``escalated`` by a failed recovery attempt
    resolution: Resolution | None = None  # ``resolved``


class VirtuousRecord(Struct, tag="w", array_like=True, gc=False):
    lifecycle: str
    number: int
    opened_at: float
    evidence: list[str]
    ended_at: float | None = None  # ``ended``


LifecycleRecord = ViciousRecord | VirtuousRecord


def update_circles(
    prev: CircleState | None,
    moment: CircleMoment,
    cfg: CircleConfig,
    max_lateness_s: float,
) -> tuple[CircleState, list[LifecycleRecord]]:
    """Apply one moment to the circle state ``prev`` (not modified): the new state and the
    lifecycle records, in order (:func:`lifecycle_alert` makes them alerts)."""
    c = replace(prev) if prev is not None else CircleState()
    if moment.failed:
        lf = c.last_failure_at
        if lf is None or moment.occurred_at > lf:
            c.last_failure_at = moment.occurred_at
    records = vicious_circle(c, moment, cfg, max_lateness_s)
    records.extend(virtuous_circle(c, moment, cfg))
    return c, records


def vicious_circle(c: CircleState, m: CircleMoment, cfg: CircleConfig,
                   max_lateness_s: float) -> list[LifecycleRecord]:
    """DOMAIN.md "vicious-circle": failed moments beget failed moments.

    It opens when ``vicious_failures`` (3) failures fall within ``vicious_window_s``
    (72 h) of event time while the score is below ``vicious_score_threshold`` (0),
    escalates amber → red once (the chain reaches ``vicious_red_failures``, or a recovery
    attempt fails), and resolves when the score is back at the threshold. Opened once,
    not re-sent per failure: each transition is one lifecycle record. Updates ``c`` in
    place (its nested values are replaced, never changed); returns the records.
    """
    out: list[LifecycleRecord] = []
    if m.failed:
        memory = _remember_failure(c, m, cfg, max_lateness_s)
        if memory is not None:
            if c.vicious is None:
                out.extend(_open_vicious(c, m, memory, cfg))
            else:
                out.extend(_grow_vicious(c, m, memory, cfg))
    if c.vicious is not None:
        out.extend(_recover_vicious(c, m, cfg))
    return out


def _remember_failure(c: CircleState, m: CircleMoment, cfg: CircleConfig,
                      max_lateness_s: float) -> list[ChainFailure] | None:
    """Add the failure to the chain's memory (bounded in size and in event time); None
    when it is older than the last resolved circle's chain (it belonged to that one)."""
    previous_end = c.last_resolved_failure_at
    if previous_end is not None and m.occurred_at <= previous_end:
        return None
    horizon = m.at - max_lateness_s - cfg.vicious_window_s
    memory = [f for f in c.chain if f.at >= horizon]
    insort(memory, ChainFailure(m.occurred_at, m.event_id, m.recovery_of or ""))
    if len(memory) > cfg.vicious_memory:
        memory = memory[len(memory) - cfg.vicious_memory:]
    c.chain = memory
    return memory


def _open_vicious(c: CircleState, m: CircleMoment, memory: list[ChainFailure],
                  cfg: CircleConfig) -> list[LifecycleRecord]:
    """Open a circle when the chain holds, the score is below the threshold and the last
    circle's cooldown is over; red at once if the chain is long or a recovery failed."""
    previous_end = c.last_resolved_failure_at
    if not (
        m.score < cfg.vicious_score_threshold
        and (previous_end is None
             or memory[-1].at >= previous_end + cfg.vicious_cooldown_s)
        and has_chain([f.at for f in memory], cfg.vicious_failures, cfg.vicious_window_s)
    ):
        return []
    n = c.vicious_opened + 1
    vo = OpenVicious(n, m.at, len(memory))
    c.vicious_opened = n
    c.vicious = vo
    out: list[LifecycleRecord] = [_vicious(m.event, vo, memory, "opened", m.score)]
    failed_recovery = next(
        (Recovery(f.event_id, f.recovery_of) for f in memory if f.recovery_of), None)
    if failed_recovery or vo.chain >= cfg.vicious_red_failures:
        vo.red = True
        out.append(_vicious(m.event, vo, memory, "escalated", m.score,
                            recovery=failed_recovery))
    return out


def _grow_vicious(c: CircleState, m: CircleMoment, memory: list[ChainFailure],
                  cfg: CircleConfig) -> list[LifecycleRecord]:
    """One more failure in the open circle: red once it is long or a recovery failed."""
    assert c.vicious is not None
    vo = c.vicious = replace(c.vicious, chain=c.vicious.chain + 1)
    recovery_of = m.recovery_of
    if vo.red or not (recovery_of or vo.chain >= cfg.vicious_red_failures):
        return []
    vo.red = True
    return [_vicious(m.event, vo, memory, "escalated", m.score,
                     recovery=Recovery(m.event_id, recovery_of) if recovery_of else None)]


def _recover_vicious(c: CircleState, m: CircleMoment, cfg: CircleConfig
                     ) -> list[LifecycleRecord]:
    """A good recovery attempt is kept as evidence; a score back at the threshold
    resolves the circle."""
    vo = c.vicious
    assert vo is not None
    if m.recovery_of and not m.failed:
        vo = c.vicious = replace(vo, recoveries=[*vo.recoveries[1 - MAX_RECOVERIES:],
                                                 Recovery(m.event_id, m.recovery_of)])
    if m.score < cfg.vicious_score_threshold:
        return []
    # The chain is over: its failures never count again, and the cooldown runs from its
    # last failure (event time, so it does not depend on which good moment happened to
    # tip the score).
    last_failure = c.chain[-1].at if c.chain else vo.opened_at
    c.vicious = None
    c.last_resolved_failure_at = last_failure
    c.chain = []
    return [_vicious(m.event, vo, [], "resolved", m.score, resolved_at=m.at,
                     cooldown_until=last_failure + cfg.vicious_cooldown_s)]


def virtuous_circle(c: CircleState, m: CircleMoment, cfg: CircleConfig
                    ) -> list[LifecycleRecord]:
    """DOMAIN.md "virtuous-circle": moments that exceed expectation beget more of the same.

    It opens at ``virtuous_moments`` (5) consecutive delights in event time (q ≥ +0.6)
    with no failure in ``virtuous_quiet_s`` (30 days) before the newest of them, and
    ends at the next failed moment. Reads the latest failure time that
    :func:`update_circles` keeps; updates ``c`` in place; returns the records.
    """
    t = m.occurred_at
    nd = c.latest_other_at
    if m.delight:
        if nd is None or t > nd:  # a delight older than the latest other moment is no streak
            streak = [*c.delights]
            insort(streak, Delight(t, m.event_id))
            c.delights = streak[-cfg.virtuous_moments:]
    elif nd is None or t > nd:
        c.latest_other_at = t
        if c.delights:
            c.delights = [d for d in c.delights if d.at > t]
    wo = c.virtuous
    if wo is not None and m.failed:
        c.virtuous = None
        return [_virtuous(wo, [m.event_id], "ended", ended_at=m.at)]
    if wo is None and m.delight:
        streak = c.delights
        lf = c.last_failure_at
        if len(streak) >= cfg.virtuous_moments and (
            lf is None or streak[-1].at - lf >= cfg.virtuous_quiet_s
        ):
            n = c.virtuous_opened + 1
            wo = c.virtuous = OpenVirtuous(n, m.at)
            c.virtuous_opened = n
            return [_virtuous(wo, [d.event_id for d in streak], "opened")]
    return []


def _vicious(
    event: TouchpointEvent,
    vo: OpenVicious,
    memory: list[ChainFailure],
    lifecycle: str,
    score: float,
    *,
    recovery: Recovery | None = None,
    resolved_at: float | None = None,
    cooldown_until: float = 0.0,
) -> ViciousRecord:
    event_id = event.event_id
    if lifecycle == "resolved":
        evidence = [event_id, *(r.event_id for r in vo.recoveries if r.event_id != event_id)]
    else:
        evidence = [f.event_id for f in memory]
        if event_id not in evidence:
            evidence.append(event_id)
    record = ViciousRecord(lifecycle, vo.number, vo.opened_at, vo.chain, vo.red,
                           round(score, 6), evidence)
    if lifecycle == "escalated":
        record.failed_recovery = recovery
    elif resolved_at is not None:
        record.resolution = Resolution(resolved_at, cooldown_until, list(vo.recoveries))
    return record


def _virtuous(
    wo: OpenVirtuous,
    evidence: list[str],
    lifecycle: str,
    *,
    ended_at: float | None = None,
) -> VirtuousRecord:
    return VirtuousRecord(lifecycle, wo.number, wo.opened_at, evidence, ended_at)


def lifecycle_alert(record: LifecycleRecord, event: TouchpointEvent, detected_at: float,
                    rules_version: str = ENV_VERSION) -> dict[str, Any]:
    """The alert of a lifecycle record, caused by ``event`` (the same alert every time),
    computed under the rules ``rules_version``."""
    kind = VICIOUS if isinstance(record, ViciousRecord) else VIRTUOUS
    customer_id = event.customer_id
    n = record.number
    lifecycle = record.lifecycle
    opened_at = record.opened_at
    alert: dict[str, Any] = {
        "schema": VICIOUS_SCHEMA if kind == VICIOUS else VIRTUOUS_SCHEMA,
        "alert_id": lifecycle_id(kind, customer_id, n, lifecycle),
        "kind": kind,
        "lifecycle": lifecycle,
        "circle_id": circle_id(kind, customer_id, n),
        "circle": n,
        "severity": "green",
        "customer_id": customer_id,
        "touchpoint": event.touchpoint,
        "occurred_at": event.occurred_at,
        "detected_at": iso(detected_at),
        "rules_version": rules_version,
        "event_id": event.event_id,
        "opened_at": iso(opened_at),
    }
    if isinstance(record, VirtuousRecord):
        alert["evidence"] = {"event_ids": record.evidence}
        if record.ended_at is not None:
            ended_at = record.ended_at
            alert["ended_at"] = iso(ended_at)
            alert["duration_s"] = round(max(0.0, ended_at - opened_at), 3)
        return alert
    if lifecycle != "resolved":
        alert["severity"] = "red" if record.red else "amber"
    alert["failures"] = record.chain
    alert["score"] = record.score
    alert["evidence"] = {"event_ids": record.evidence}
    if lifecycle == "escalated":
        # Why it turned red: the chain reached the red length, or a recovery attempt
        # (``recovery_event_id``) failed to repair the moment ``recovery_of``.
        recovery = record.failed_recovery
        alert["reason"] = "failed_recovery" if recovery else "chain"
        if recovery:
            alert["recovery_event_id"], alert["recovery_of"] = (recovery.event_id,
                                                                 recovery.recovery_of)
    elif record.resolution is not None:
        res = record.resolution
        alert["resolved_at"] = iso(res.resolved_at)
        alert["duration_s"] = round(max(0.0, res.resolved_at - opened_at), 3)
        alert["cooldown_until"] = iso(res.cooldown_until)
        alert["recoveries"] = [{"event_id": r.event_id, "recovery_of": r.recovery_of}
                               for r in res.recoveries]
    return alert


def open_circles(c: CircleState | None, customer_id: str) -> list[dict[str, Any]]:
    """The customer's open circles, for the HTTP view (ids, times, no event payloads)."""
    if c is None:
        return []
    found = []
    vo = c.vicious
    if vo is not None:
        found.append({
            "kind": VICIOUS, "circle_id": circle_id(VICIOUS, customer_id, vo.number),
            "circle": vo.number, "severity": "red" if vo.red else "amber",
            "opened_at": iso(vo.opened_at), "failures": vo.chain,
            "failure_event_ids": [f.event_id for f in c.chain],
        })
    wo = c.virtuous
    if wo is not None:
        found.append({
            "kind": VIRTUOUS, "circle_id": circle_id(VIRTUOUS, customer_id, wo.number),
            "circle": wo.number, "severity": "green", "opened_at": iso(wo.opened_at),
        })
    return found


def from_v1(c: dict[str, Any]) -> CircleState:
    """The circle state of a v1 (JSON dict) customer state."""
    vo = c.get("vo")
    wo = c.get("wo")
    return CircleState(
        last_failure_at=c.get("lf"),
        chain=[ChainFailure(f[0], f[1], f[2] or "") for f in c.get("vf", ())],
        vicious=None if vo is None else OpenVicious(
            vo["n"], vo["at"], vo["chain"], bool(vo["red"]),
            [Recovery(*r) for r in vo.get("rec", ())]),
        vicious_opened=c.get("vn", 0),
        last_resolved_failure_at=c.get("vr"),
        delights=[Delight(*d) for d in c.get("ds", ())],
        latest_other_at=c.get("nd"),
        virtuous=None if wo is None else OpenVirtuous(wo["n"], wo["at"]),
        virtuous_opened=c.get("wn", 0),
    )


def record_from_v1(r: list[Any]) -> LifecycleRecord:
    """A v1 lifecycle record (a list) as its struct."""
    if r[0] == "w":
        return VirtuousRecord(r[1], r[2], r[3], r[4], r[5] if len(r) > 5 else None)
    rec = ViciousRecord(r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7])
    if r[1] == "escalated" and len(r) > 8 and r[8]:
        rec.failed_recovery = Recovery(*r[8])
    elif r[1] == "resolved" and len(r) > 8:
        resolved_at, cooldown_until, recoveries = r[8]
        rec.resolution = Resolution(resolved_at, cooldown_until,
                                    [Recovery(*x) for x in recoveries])
    return rec
