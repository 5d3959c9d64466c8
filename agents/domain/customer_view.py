"""What ``GET /customers/{id}`` shows of a customer's state: score, circles, recent moments.

Only what the model derived (scores, qualities, ids, times, touchpoints), never an
event's free-form content, so the page exposes no customer payload.
"""

from __future__ import annotations

from typing import Any

from agents.domain.circles import open_circles
from agents.domain.customer_state import CustomerState
from agents.domain.timestamps import iso

SCHEMA = "mot.customer/v1"


def customer_view(customer_id: str, state: CustomerState) -> dict[str, Any]:
    at = state.at
    return {
        "schema": SCHEMA,
        "customer_id": customer_id,
        "score": round(state.score, 6),
        "score_at": iso(at) if at is not None else None,
        "moments": state.moments,
        "failures": state.failures,
        "open_circles": open_circles(state.circles, customer_id),
        "recent_moments": [
            {"event_id": m.event_id, "occurred_at": iso(m.at),
             "touchpoint": m.touchpoint, "quality": round(m.quality, 6)}
            for m in reversed(state.recent)
        ],
    }


def score_line(customer_id: str, state: CustomerState) -> dict[str, Any]:
    """A customer's final running score, as ``mot replay --scores`` writes it (unrounded,
    the event time as epoch seconds)."""
    return {"customer_id": customer_id, "score": state.score, "at": state.at,
            "moments": state.moments}


def final_view(state: CustomerState) -> CustomerState:
    """What a replay worker hands back of a customer's final state: the score line's
    fields and the circles (what a backtest compares), not the whole state."""
    return CustomerState(score=state.score, at=state.at, moments=state.moments,
                         circles=state.circles)


def circle_state(customer_id: str, state: CustomerState) -> list[list[Any]]:
    """The customer's open circles as comparable values: [kind, circle number, severity]."""
    return sorted([c["kind"], c["circle"], c["severity"]]
                  for c in open_circles(state.circles, customer_id))


def running_score_of(state: CustomerState) -> float:
    """The customer's running score as of their latest moment."""
    return float(state.score)


def not_found(customer_id: str) -> dict[str, Any]:
    return {"error": "not_found", "customer_id": customer_id,
            "detail": "no moment of this customer has been scored"}
