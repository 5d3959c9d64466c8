"""The quality q ∈ [−1, +1] of one moment of truth, from its outcome signals.

Bad is stronger than good: the event's q is the minimum over the signals it carries,
and the signal that set that minimum is the *reason* reported on a failed moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from msgspec import UNSET, Struct

from agents.domain.tunables import default

if TYPE_CHECKING:
    from schemas.touchpoint_event import TouchpointEvent

SIGNALS = ("outcome", "csat", "ces", "nps", "sentiment", "duration_s")


@dataclass(frozen=True, slots=True)
class QualityConfig:
    """How signals map to q; defaults from :mod:`agents.domain.tunables`."""

    success_quality: float = default("success_quality")
    failure_severity: float = default("failure_severity")
    failed_threshold: float = default("failed_threshold")
    delight_threshold: float = default("delight_threshold")
    red_quality: float = default("red_quality")


class Quality(Struct, frozen=True):
    """The moment's quality and the signal that decided it."""

    q: float
    signal: str
    value: Any


def outcome_quality(outcome: str, cfg: QualityConfig) -> float:
    if outcome == "failure" or outcome == "abandoned":
        return -cfg.failure_severity
    if outcome == "delight":
        return 1.0
    return cfg.success_quality  # "success": expectation met


def csat_quality(csat: int) -> float:
    """1 → −1, 3 → 0, 5 → +1."""
    return (csat - 3) / 2.0


def ces_quality(ces: int) -> float:
    """Customer effort 1 (very hard) → −1, 4 → 0, 7 (very easy) → +1."""
    return (ces - 4) / 3.0


def nps_quality(nps: int) -> float:
    """Passives (7) are neutral; detractors fall to −1 at 0, promoters reach +1 at 10."""
    return (nps - 7) / 3.0 if nps >= 7 else (nps - 7) / 7.0


def duration_quality(duration_s: float, expected_s: float) -> float:
    """Time over expectation costs value in proportion to the overrun (100 % over → −1).

    Finishing on time or early is neutral: it is what the customer expected.
    """
    overrun = (duration_s - expected_s) / expected_s
    return -min(1.0, overrun) if overrun > 0 else 0.0


def signals(event: TouchpointEvent, cfg: QualityConfig) -> list[tuple[str, Any, float]]:
    """Every signal the event carries: ``(name, value as sent, q)``, in ``SIGNALS`` order."""
    out: list[tuple[str, Any, float]] = []
    if event.outcome:
        out.append(("outcome", event.outcome, outcome_quality(event.outcome, cfg)))
    if event.csat is not UNSET:
        out.append(("csat", event.csat, csat_quality(event.csat)))  # type: ignore[arg-type]
    if event.ces is not UNSET:
        out.append(("ces", event.ces, ces_quality(event.ces)))  # type: ignore[arg-type]
    if event.nps is not UNSET:
        out.append(("nps", event.nps, nps_quality(event.nps)))  # type: ignore[arg-type]
    if event.sentiment is not UNSET:
        out.append(("sentiment", event.sentiment, float(event.sentiment)))  # type: ignore[arg-type]
    if event.duration_s is not UNSET:
        out.append(("duration_s", event.duration_s,
                    duration_quality(event.duration_s, event.expected_duration_s)))  # type: ignore[arg-type]
    return out


def signal_qualities(event: TouchpointEvent, cfg: QualityConfig) -> dict[str, float]:
    """Every signal the event carries, mapped to q (for evidence in alerts)."""
    return {name: q for name, _, q in signals(event, cfg)}


def moment_quality(event: TouchpointEvent, cfg: QualityConfig) -> Quality:
    """The worst signal decides; ties go to the first in ``SIGNALS`` order.

    The event must have passed validation (at least one signal, values in range).
    """
    worst: Quality | None = None
    for signal, value, q in signals(event, cfg):
        if worst is None or q < worst.q:
            worst = Quality(q, signal, value)
    if worst is None:
        raise ValueError("event carries no outcome signal")
    return worst


def is_failed(q: float, cfg: QualityConfig) -> bool:
    return q < cfg.failed_threshold


def is_delight(q: float, cfg: QualityConfig) -> bool:
    return q >= cfg.delight_threshold
