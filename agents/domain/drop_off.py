"""The drop-off alert: a journey was abandoned or went silent, and who is to blame.

Its shape is the contract in ``schemas/drop-off-alert.v1.schema.json``. The moment
where the customer left is not blamed for an ``abandoned`` drop-off (it is the
symptom); the journey's earlier failed moments share the blame
(:mod:`agents.domain.attribution`). With no upstream failure at all, the touchpoint
where the customer left is the only evidence and takes the whole blame
(``culprit.basis = "drop-off-point"``).
"""

from __future__ import annotations

from typing import Any

from agents.domain.alert_ids import alert_id
from agents.domain.attribution import Failure, blame_by_touchpoint, blame_shares, culprit
from agents.domain.journeys import Dropped, JourneyConfig, JourneyMoment
from agents.domain.timestamps import iso
from agents.domain.tunables import ENV_VERSION

KIND = "drop-off"
SCHEMA = "mot.alert.drop-off/v1"
FORMULA = "blame_i ∝ (−q_i·weight_i) · 2^(−steps_i/half_life_steps) · 2^(−seconds_i/half_life_s)"


def drop_off_id(customer_id: str, journey_id: str) -> str:
    """One drop-off per journey, whichever path (event or timer) noticed it."""
    return alert_id(KIND, customer_id, journey_id)


def drop_off_alert(
    customer_id: str,
    dropped: Dropped,
    cfg: JourneyConfig,
    failed_threshold: float,
    red_quality: float,
    detected_at: float,
    rules_version: str = ENV_VERSION,
) -> dict[str, Any]:
    journey = dropped.journey
    moments: list[JourneyMoment] = journey.moments
    trigger = dropped.trigger_moment
    last = moments[-1]
    if trigger is not None:  # abandoned: blame what came before the abandoning moment
        where, drop_step, drop_at = trigger.touchpoint, trigger.step, trigger.at
        upstream = [m for m in moments if m.step < drop_step and m.quality < failed_threshold]
    else:  # silent: the step that never came is after the last one
        where, drop_step, drop_at = last.touchpoint, last.step + 1, last.at
        upstream = [m for m in moments if m.quality < failed_threshold]
    failures = [Failure(m.touchpoint, -m.quality * m.weight, drop_step - m.step,
                        drop_at - m.at) for m in upstream]
    shares = blame_shares(failures, cfg.blame)
    by_tp = blame_by_touchpoint(failures, shares)
    top = culprit(by_tp)
    if top is None:
        by_tp = {where: 1.0}
        blamed = {"touchpoint": where, "blame": 1.0, "basis": "drop-off-point"}
    else:
        blamed = {"touchpoint": top[0], "blame": round(top[1], 6), "basis": "upstream-failure"}
    severity = "red" if any(m.quality <= red_quality for m in upstream) else "amber"
    evidence = [m.event_id for m in upstream]
    evidence.append(trigger.event_id if trigger is not None else last.event_id)
    alert: dict[str, Any] = {
        "schema": SCHEMA,
        "alert_id": drop_off_id(customer_id, dropped.journey_id),
        "kind": KIND,
        "severity": severity,
        "customer_id": customer_id,
        "journey_id": dropped.journey_id,
        "trigger": dropped.trigger,
        "touchpoint": where,
        "occurred_at": iso(drop_at),
        "detected_at": iso(detected_at),
        "rules_version": rules_version,
        "steps": journey.steps,
        "moments": [
            {"event_id": m.event_id, "occurred_at": iso(m.at),
             "touchpoint": m.touchpoint, "step": m.step, "quality": round(m.quality, 6),
             "failed": m.quality < failed_threshold}
            for m in moments
        ],
        "upstream_failures": [
            {"event_id": m.event_id, "occurred_at": iso(m.at),
             "touchpoint": m.touchpoint, "quality": round(m.quality, 6),
             "steps_before": f.steps_before, "blame": round(s, 6)}
            for m, f, s in zip(upstream, failures, shares, strict=True)
        ],
        "blame_by_touchpoint": {tp: round(s, 6) for tp, s in by_tp.items()},
        "culprit": blamed,
        "attribution": {"formula": FORMULA, "half_life_steps": cfg.blame.half_life_steps,
                        "half_life_s": cfg.blame.half_life_s},
        "evidence": {"event_ids": evidence},
    }
    if journey.kind is not None:
        alert["journey"] = journey.kind
    if dropped.trigger == "timeout":
        alert["timeout_s"] = cfg.timeout_s
        alert["silent_for_s"] = round(dropped.clock - journey.last_at, 3)
    return alert
