"""The failed-moment alert: one per failed moment, self-explaining for ops.

Its shape is the contract in ``schemas/failed-moment-alert.v1.schema.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from msgspec import UNSET

from agents.domain.alert_ids import alert_id
from agents.domain.customer_moments import MomentResult
from agents.domain.quality import signal_qualities
from agents.domain.timestamps import iso

if TYPE_CHECKING:  # annotations only: model_config imports what imports this
    from agents.domain.model_config import ModelConfig
    from schemas.touchpoint_event import TouchpointEvent

KIND = "failed-moment"
SCHEMA = "mot.alert.failed-moment/v1"


def failed_moment_id(customer_id: str, event_id: str) -> str:
    return alert_id(KIND, customer_id, event_id)


def failed_moment_alert(
    event: TouchpointEvent, result: MomentResult, cfg: ModelConfig, detected_at: float
) -> dict[str, Any]:

    """Build the alert for a failed moment (``result.failed`` must be true)."""
    q = result.quality
    threshold = cfg.quality.failed_threshold
    customer_id = event.customer_id
    event_id = event.event_id
    alert: dict[str, Any] = {
        "schema": SCHEMA,
        "alert_id": failed_moment_id(customer_id, event_id),
        "kind": KIND,
        "severity": "red" if q.q <= cfg.quality.red_quality else "amber",
        "customer_id": customer_id,
        "touchpoint": event.touchpoint,
        "occurred_at": event.occurred_at,
        "detected_at": iso(detected_at),
        "rules_version": cfg.rules_version,
        "event_id": event_id,
        "quality": round(q.q, 6),
        "reason": {
            "signal": q.signal,
            "value": q.value,
            "quality": round(q.q, 6),
            "threshold": threshold,
            "shortfall": round(threshold - q.q, 6),
            "signals": {k: round(v, 6) for k, v in signal_qualities(event, cfg.quality).items()},
        },
        "score_before": round(result.score_before, 6),
        "score_after": round(result.score_after, 6),
        "recent_moments": [
            {
                "event_id": m.event_id,
                "occurred_at": iso(m.at),
                "touchpoint": m.touchpoint,
                "quality": round(m.quality, 6),
            }
            for m in result.context
        ],
        "evidence": {"event_ids": [event_id]},
    }
    for name, value in (("channel", event.channel), ("journey_id", event.journey_id),
                        ("journey", event.journey), ("stage", event.stage),
                        ("team", event.team)):
        if value is not UNSET:
            alert[name] = value
    return alert
