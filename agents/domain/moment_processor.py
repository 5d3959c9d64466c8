"""Everything the service does with one input record, as a pure function.

The Faust agent and the offline tools both call :func:`process_record`; the agent
only reads and writes the table and sends what comes back. So the stream and a
replay of the same records cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agents.domain.customer_moments import MomentResult, RejectedMoment, record_moment
from agents.domain.failed_moment import KIND as FAILED_MOMENT
from agents.domain.failed_moment import failed_moment_alert
from agents.domain.model_config import ModelConfig
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
    try:
        state, result = record_moment(state_of(customer_id), event, occurred_at, cfg, now)
    except RejectedMoment as exc:
        return Processed(rejected=(exc.reason, exc.detail), event=event, customer_id=customer_id)
    out = Processed(event=event, customer_id=customer_id, result=result,
                    state=None if result.duplicate else state)
    if result.failed:
        out.outputs.append(
            Output(FAILED_MOMENT, customer_id, failed_moment_alert(event, result, cfg, now)))
    return out
