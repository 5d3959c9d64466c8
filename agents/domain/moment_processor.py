"""Everything the service does with one input record, as a pure function.

The Faust agent and the offline tools both call :func:`process_record`; the agent
only reads and writes the table and sends what comes back. So the stream and a
replay of the same records cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.domain.circles import update_circles
from agents.domain.customer_moments import MomentResult, RejectedMoment, record_moment
from agents.domain.drop_off import KIND as DROP_OFF
from agents.domain.drop_off import drop_off_alert
from agents.domain.failed_moment import KIND as FAILED_MOMENT
from agents.domain.failed_moment import failed_moment_alert
from agents.domain.journeys import KEY as JOURNEYS
from agents.domain.journeys import JourneyChange, on_moment
from agents.domain.model_config import ModelConfig
from agents.domain.quality import is_delight
from schemas.touchpoint_event import InvalidEvent, decode_event


@dataclass(frozen=True, slots=True)
class Output:
    """A record to send: ``kind`` names the alert kind (the shell maps it to a topic)."""

    kind: str
    key: str
    value: dict[str, Any]


@dataclass(slots=True)
class Processed:
    """The outcome of one record. Exactly one of: rejected, rekey, or scored."""

    rejected: tuple[str, str] | None = None  # (reason, detail) for the dead-letter topic
    rekey: str | None = None  # valid event under the wrong key: re-publish under this key
    event: dict[str, Any] | None = None
    customer_id: str | None = None
    state: dict[str, Any] | None = None  # the customer's new state; None: leave it as it was
    result: MomentResult | None = None
    outputs: list[Output] = field(default_factory=list)
    occurred_at: float | None = None  # the event time of a counted (scored, not duplicate) event
    journeys: JourneyChange | None = None  # what it did to the customer's journeys, if anything


def process_record(
    value: bytes | None,
    key: bytes | None,
    state_of: Callable[[str], dict[str, Any] | None],
    cfg: ModelConfig,
    max_record_bytes: int,
    now: float,
) -> Processed:
    """Decode, validate and score one record; ``state_of`` reads a customer's state."""
    try:
        event, occurred_at = decode_event(value, max_record_bytes)
    except InvalidEvent as exc:
        return Processed(rejected=(exc.reason, exc.detail))
    customer_id: str = event["customer_id"]
    if key != customer_id.encode():
        return Processed(rekey=customer_id, event=event, customer_id=customer_id)
    prev = state_of(customer_id)
    try:
        state, result = record_moment(prev, event, occurred_at, cfg, now)
    except RejectedMoment as exc:
        return Processed(rejected=(exc.reason, exc.detail), event=event, customer_id=customer_id)
    # A duplicate's state (unchanged) is written back too: after a crash the local
    # store may hold an update whose changelog record never reached Kafka.
    out = Processed(event=event, customer_id=customer_id, result=result, state=state)
    if result.failed:
        out.outputs.append(
            Output(FAILED_MOMENT, customer_id, failed_moment_alert(event, result, cfg, now)))
    if not result.duplicate:  # a duplicate changes no circle and sends no lifecycle event
        q = result.quality.q
        circles, lifecycle = update_circles(
            prev.get("c") if prev else None, event, occurred_at, q, result.failed,
            is_delight(q, cfg.quality), state["score"], state["at"], cfg.circles,
            cfg.max_lateness_s, now)
        if circles:
            state["c"] = circles
        out.outputs.extend(Output(a["kind"], customer_id, a) for a in lifecycle)
        _journeys(out, prev, state, event, occurred_at, q, cfg, now)
    return out


def _journeys(out: Processed, prev: dict[str, Any] | None, state: dict[str, Any],
              event: dict[str, Any], occurred_at: float, q: float, cfg: ModelConfig,
              now: float) -> None:
    """Journey state and drop-off alerts (README "Journeys and drop-off attribution")."""
    out.occurred_at = occurred_at
    js, change = on_moment(prev.get(JOURNEYS) if prev else None, event, occurred_at, q,
                           state["at"], cfg.journeys, cfg.quality.failed_threshold)
    if js is None:
        state.pop(JOURNEYS, None)
    else:
        state[JOURNEYS] = js
    if change is None:
        return
    out.journeys = change
    customer_id = event["customer_id"]
    for d in change.dropped:
        out.outputs.append(Output(DROP_OFF, customer_id, drop_off_alert(
            customer_id, d, cfg.journeys, cfg.quality.failed_threshold,
            cfg.quality.red_quality, now)))
