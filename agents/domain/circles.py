"""Normann's circles, per customer, in event time: the rules and their lifecycle alerts.

A **vicious circle** opens when failed moments chain (≥ N failures within a window W of
event time while the running score is below a threshold), escalates amber → red when
the chain grows to R failures or a recovery attempt fails, and resolves when the score
is back at or above the threshold. A **virtuous circle** opens when delight repeats
(≥ V consecutive delights in event time and no failure in the quiet period before the
newest of them) and ends at the next failed moment.

The state the rules need lives in the customer's state dict under ``"c"`` (one table
value, serialized on every update), so it is small and bounded: the failure times of
the current chain (at most ``vicious_memory``, none older than W + the lateness bound),
the newest V delights, a few event times and counters. No timers: every decision is
taken when an event arrives, on event time, so the stream and an offline replay of the
same records take the same decisions.

Ids are deterministic and independent of which event tipped a transition: a circle is
the customer's n-th circle of its kind, ``alert_id = uuid5(kind, customer, n,
lifecycle)``. Reordering the failures of a chain (or the good moments that end it)
yields the same ids; see the README's out-of-order policy for the exact claim.

:func:`update_circles` (the rules :func:`vicious_circle` and :func:`virtuous_circle`)
returns each transition as a compact *lifecycle record* (a list:
everything in the alert that the causing event does not carry) and
:func:`lifecycle_alert` renders it with that event. The customer's state keeps the
records of its last transitions, so a duplicate of the causing event re-sends the very
same alerts (``agents.domain.moment_processor``).
"""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from typing import Any

from agents.domain.alert_ids import alert_id
from agents.domain.timestamps import iso
from agents.domain.tunables import DAY, HOUR, default

VICIOUS = "vicious-circle"
VIRTUOUS = "virtuous-circle"
VICIOUS_SCHEMA = "mot.alert.vicious-circle/v1"
VIRTUOUS_SCHEMA = "mot.alert.virtuous-circle/v1"
KINDS = (VICIOUS, VIRTUOUS)

# Positions in a failure-memory entry (a list, to keep the serialized state small):
# event time, event id, and for a failed recovery attempt the id of the moment it tried
# to repair (else 0).
F_AT, F_EVENT_ID, F_RECOVERY_OF = range(3)
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


@dataclass(frozen=True, slots=True)
class CircleMoment:
    """One new (not duplicate, accepted) moment, as the circle rules see it."""

    event: dict[str, Any]  # the event: its id and ``recovery_of`` are evidence
    occurred_at: float  # its event time
    failed: bool
    delight: bool
    score: float  # the customer's running score after the moment
    at: float  # the customer's latest event time after the moment

    @property
    def event_id(self) -> str:
        return str(self.event["event_id"])

    @property
    def recovery_of(self) -> str | None:
        """The failed moment this one tries to repair, if it says so."""
        return self.event.get("recovery_of")


# The circle state, under ``"c"`` in the customer's state (keys are short: it is
# serialized on every update):
#   lf  event time of the customer's latest failed moment (the virtuous quiet period)
#   vf  failure memory of the current chain, sorted (entries: F_AT, F_EVENT_ID, ...)
#   vo  the open vicious circle: n, at (opened), chain, red (0/1), rec (recoveries)
#   vn  vicious circles opened so far;  vr  last failure of the last resolved one
#   ds  the newest delights [event time, event id];  nd  latest other moment's time
#   wo  the open virtuous circle: n, at;  wn  virtuous circles opened so far


def update_circles(
    prev: dict[str, Any] | None,
    moment: CircleMoment,
    cfg: CircleConfig,
    max_lateness_s: float,
) -> tuple[dict[str, Any], list[list[Any]]]:
    """Apply one moment to the circle state ``prev`` (not modified): the new state and the
    lifecycle records, in order (:func:`lifecycle_alert` makes them alerts)."""
    c: dict[str, Any] = dict(prev) if prev else {}
    if moment.failed:
        lf = c.get("lf")
        if lf is None or moment.occurred_at > lf:
            c["lf"] = moment.occurred_at
    records = vicious_circle(c, moment, cfg, max_lateness_s)
    records.extend(virtuous_circle(c, moment, cfg))
    return c, records


def vicious_circle(c: dict[str, Any], m: CircleMoment, cfg: CircleConfig,
                   max_lateness_s: float) -> list[list[Any]]:
    """DOMAIN.md "vicious-circle": failed moments beget failed moments.

    It opens when ``vicious_failures`` (3) failures fall within ``vicious_window_s``
    (72 h) of event time while the score is below ``vicious_score_threshold`` (0),
    escalates amber → red once (the chain reaches ``vicious_red_failures``, or a recovery
    attempt fails), and resolves when the score is back at the threshold. Opened once,
    not re-sent per failure: each transition is one lifecycle record. Updates ``c`` in
    place; returns the records.
    """
    out: list[list[Any]] = []
    if m.failed:
        memory = _remember_failure(c, m, cfg, max_lateness_s)
        if memory is not None:
            if c.get("vo") is None:
                out.extend(_open_vicious(c, m, memory, cfg))
            else:
                out.extend(_grow_vicious(c, m, memory, cfg))
    if c.get("vo") is not None:
        out.extend(_recover_vicious(c, m, cfg))
    return out


def _remember_failure(c: dict[str, Any], m: CircleMoment, cfg: CircleConfig,
                      max_lateness_s: float) -> list[list[Any]] | None:
    """Add the failure to the chain's memory (bounded in size and in event time); None
    when it is older than the last resolved circle's chain (it belonged to that one)."""
    previous_end = c.get("vr")
    if previous_end is not None and m.occurred_at <= previous_end:
        return None
    horizon = m.at - max_lateness_s - cfg.vicious_window_s
    memory = [f for f in c.get("vf", ()) if f[F_AT] >= horizon]
    insort(memory, [m.occurred_at, m.event_id, m.recovery_of or 0])
    if len(memory) > cfg.vicious_memory:
        memory = memory[len(memory) - cfg.vicious_memory:]
    c["vf"] = memory
    return memory


def _open_vicious(c: dict[str, Any], m: CircleMoment, memory: list[list[Any]],
                  cfg: CircleConfig) -> list[list[Any]]:
    """Open a circle when the chain holds, the score is below the threshold and the last
    circle's cooldown is over; red at once if the chain is long or a recovery failed."""
    previous_end = c.get("vr")
    if not (
        m.score < cfg.vicious_score_threshold
        and (previous_end is None
             or memory[-1][F_AT] >= previous_end + cfg.vicious_cooldown_s)
        and has_chain([f[F_AT] for f in memory], cfg.vicious_failures, cfg.vicious_window_s)
    ):
        return []
    n = c.get("vn", 0) + 1
    vo = {"n": n, "at": m.at, "chain": len(memory), "red": 0}
    c["vn"] = n
    c["vo"] = vo
    out = [_vicious(m.event, vo, memory, "opened", m.score)]
    failed_recovery = next(
        ((f[F_EVENT_ID], f[F_RECOVERY_OF]) for f in memory if f[F_RECOVERY_OF]), None)
    if failed_recovery or vo["chain"] >= cfg.vicious_red_failures:
        vo["red"] = 1
        out.append(_vicious(m.event, vo, memory, "escalated", m.score,
                            recovery=failed_recovery))
    return out


def _grow_vicious(c: dict[str, Any], m: CircleMoment, memory: list[list[Any]],
                  cfg: CircleConfig) -> list[list[Any]]:
    """One more failure in the open circle: red once it is long or a recovery failed."""
    vo = c["vo"] = {**c["vo"], "chain": c["vo"]["chain"] + 1}
    recovery_of = m.recovery_of
    if vo["red"] or not (recovery_of or vo["chain"] >= cfg.vicious_red_failures):
        return []
    vo["red"] = 1
    return [_vicious(m.event, vo, memory, "escalated", m.score,
                     recovery=(m.event_id, recovery_of) if recovery_of else None)]


def _recover_vicious(c: dict[str, Any], m: CircleMoment, cfg: CircleConfig
                     ) -> list[list[Any]]:
    """A good recovery attempt is kept as evidence; a score back at the threshold
    resolves the circle."""
    vo = c["vo"]
    if m.recovery_of and not m.failed:
        vo = c["vo"] = {**vo, "rec": [*vo.get("rec", ())[1 - MAX_RECOVERIES:],
                                      [m.event_id, m.recovery_of]]}
    if m.score < cfg.vicious_score_threshold:
        return []
    # The chain is over: its failures never count again, and the cooldown runs from its
    # last failure (event time, so it does not depend on which good moment happened to
    # tip the score).
    chain = c.get("vf") or [[vo["at"]]]
    last_failure = chain[-1][F_AT]
    del c["vo"]
    c["vr"] = last_failure
    c.pop("vf", None)
    return [_vicious(m.event, vo, [], "resolved", m.score, resolved_at=m.at,
                     cooldown_until=last_failure + cfg.vicious_cooldown_s)]


def virtuous_circle(c: dict[str, Any], m: CircleMoment, cfg: CircleConfig
                    ) -> list[list[Any]]:
    """DOMAIN.md "virtuous-circle": moments that exceed expectation beget more of the same.

    It opens at ``virtuous_moments`` (5) consecutive delights in event time (q ≥ +0.6)
    with no failure in ``virtuous_quiet_s`` (30 days) before the newest of them, and
    ends at the next failed moment. Reads the latest failure time ``lf`` that
    :func:`update_circles` keeps; updates ``c`` in place; returns the records.
    """
    t = m.occurred_at
    nd = c.get("nd")
    if m.delight:
        if nd is None or t > nd:  # a delight older than the latest other moment is no streak
            streak = [*c.get("ds", ())]
            insort(streak, [t, m.event_id])
            c["ds"] = streak[-cfg.virtuous_moments:]
    elif nd is None or t > nd:
        c["nd"] = t
        if c.get("ds"):
            c["ds"] = [d for d in c["ds"] if d[0] > t]
    wo = c.get("wo")
    if wo is not None and m.failed:
        del c["wo"]
        return [_virtuous(wo, [m.event_id], "ended", ended_at=m.at)]
    if wo is None and m.delight:
        streak = c.get("ds", [])
        lf = c.get("lf")
        if len(streak) >= cfg.virtuous_moments and (
            lf is None or streak[-1][0] - lf >= cfg.virtuous_quiet_s
        ):
            n = c.get("wn", 0) + 1
            wo = c["wo"] = {"n": n, "at": m.at}
            c["wn"] = n
            return [_virtuous(wo, [d[1] for d in streak], "opened")]
    return []


# A lifecycle record (a list, to keep the state small): the kind's code, the lifecycle,
# the circle's number, when it opened, then per kind
#   vicious:  chain length, red (0/1), score (rounded as in the alert), evidence, and
#             for ``escalated`` the failed recovery ([event id, recovery_of]) or 0, for
#             ``resolved`` [resolved_at, cooldown_until, recoveries];
#   virtuous: evidence, and for ``ended`` ended_at.
L_KIND, L_LIFECYCLE, L_N, L_OPENED_AT = range(4)
V_CHAIN, V_RED, V_SCORE, V_EVIDENCE, V_EXTRA = range(4, 9)
W_EVIDENCE, W_ENDED_AT = range(4, 6)
CODES = {"v": VICIOUS, "w": VIRTUOUS}


def _vicious(
    event: dict[str, Any],
    vo: dict[str, Any],
    memory: list[list[Any]],
    lifecycle: str,
    score: float,
    *,
    recovery: tuple[str, str] | None = None,
    resolved_at: float | None = None,
    cooldown_until: float = 0.0,
) -> list[Any]:
    event_id = event["event_id"]
    if lifecycle == "resolved":
        evidence = [event_id, *(r[0] for r in vo.get("rec", ()) if r[0] != event_id)]
    else:
        evidence = [f[F_EVENT_ID] for f in memory]
        if event_id not in evidence:
            evidence.append(event_id)
    record = ["v", lifecycle, vo["n"], vo["at"], vo["chain"], vo["red"], round(score, 6),
              evidence]
    if lifecycle == "escalated":
        record.append(list(recovery) if recovery is not None else 0)
    elif resolved_at is not None:
        record.append([resolved_at, cooldown_until, [list(r) for r in vo.get("rec", ())]])
    return record


def _virtuous(
    wo: dict[str, Any],
    evidence: list[str],
    lifecycle: str,
    *,
    ended_at: float | None = None,
) -> list[Any]:
    record = ["w", lifecycle, wo["n"], wo["at"], evidence]
    if ended_at is not None:
        record.append(ended_at)
    return record


def lifecycle_alert(record: list[Any], event: dict[str, Any], detected_at: float
                    ) -> dict[str, Any]:
    """The alert of a lifecycle record, caused by ``event`` (the same alert every time)."""
    kind = CODES[record[L_KIND]]
    customer_id = event["customer_id"]
    n = record[L_N]
    lifecycle = record[L_LIFECYCLE]
    opened_at = record[L_OPENED_AT]
    alert: dict[str, Any] = {
        "schema": VICIOUS_SCHEMA if kind == VICIOUS else VIRTUOUS_SCHEMA,
        "alert_id": lifecycle_id(kind, customer_id, n, lifecycle),
        "kind": kind,
        "lifecycle": lifecycle,
        "circle_id": circle_id(kind, customer_id, n),
        "circle": n,
        "severity": "green",
        "customer_id": customer_id,
        "touchpoint": event["touchpoint"],
        "occurred_at": event["occurred_at"],
        "detected_at": iso(detected_at),
        "event_id": event["event_id"],
        "opened_at": iso(opened_at),
    }
    if kind == VIRTUOUS:
        alert["evidence"] = {"event_ids": record[W_EVIDENCE]}
        if len(record) > W_ENDED_AT:
            ended_at = record[W_ENDED_AT]
            alert["ended_at"] = iso(ended_at)
            alert["duration_s"] = round(max(0.0, ended_at - opened_at), 3)
        return alert
    if lifecycle != "resolved":
        alert["severity"] = "red" if record[V_RED] else "amber"
    alert["failures"] = record[V_CHAIN]
    alert["score"] = record[V_SCORE]
    alert["evidence"] = {"event_ids": record[V_EVIDENCE]}
    if lifecycle == "escalated":
        # Why it turned red: the chain reached the red length, or a recovery attempt
        # (``recovery_event_id``) failed to repair the moment ``recovery_of``.
        recovery = record[V_EXTRA]
        alert["reason"] = "failed_recovery" if recovery else "chain"
        if recovery:
            alert["recovery_event_id"], alert["recovery_of"] = recovery
    elif len(record) > V_EXTRA:
        resolved_at, cooldown_until, recoveries = record[V_EXTRA]
        alert["resolved_at"] = iso(resolved_at)
        alert["duration_s"] = round(max(0.0, resolved_at - opened_at), 3)
        alert["cooldown_until"] = iso(cooldown_until)
        alert["recoveries"] = [{"event_id": r[0], "recovery_of": r[1]} for r in recoveries]
    return alert


def open_circles(c: dict[str, Any] | None, customer_id: str) -> list[dict[str, Any]]:
    """The customer's open circles, for the HTTP view (ids, times, no event payloads)."""
    if not c:
        return []
    found = []
    vo = c.get("vo")
    if vo is not None:
        found.append({
            "kind": VICIOUS, "circle_id": circle_id(VICIOUS, customer_id, vo["n"]),
            "circle": vo["n"], "severity": "red" if vo["red"] else "amber",
            "opened_at": iso(vo["at"]), "failures": vo["chain"],
            "failure_event_ids": [f[F_EVENT_ID] for f in c.get("vf", ())],
        })
    wo = c.get("wo")
    if wo is not None:
        found.append({
            "kind": VIRTUOUS, "circle_id": circle_id(VIRTUOUS, customer_id, wo["n"]),
            "circle": wo["n"], "severity": "green", "opened_at": iso(wo["at"]),
        })
    return found


def in_vicious_circle(state: dict[str, Any] | None) -> bool:
    c = state.get("c") if state else None
    return bool(c) and "vo" in c


def encoded_may_be_in_vicious_circle(encoded: bytes) -> bool:
    """A cheap test on a state's encoded bytes: ``False`` means certainly not in a vicious
    circle, so a scan decodes only the states that may be (the key is present only then)."""
    return b'"vo":' in encoded
