"""Who lost the customer: blame for a drop-off shared among the journey's failed moments.

The touchpoint where a customer leaves is often not the culprit; upstream failed
moments are. Each upstream failed moment *i* gets a raw weight

    b_i = severity_i · 2^(−steps_i / H_steps) · 2^(−seconds_i / H_s)

with ``severity_i = −q_i · weight_i`` (how far below neutral the moment fell, times the
event's importance), ``steps_i`` the journey steps between the failure and the drop-off
and ``seconds_i`` the event time between them. The weights are normalized to sum to 1.
``H_s = 0`` switches the event-time term off. The culprit is the touchpoint with the
largest summed share (a touchpoint that failed twice adds both); ties go to the more
recent failure.
"""

from __future__ import annotations

from dataclasses import dataclass

from msgspec import Struct

from agents.domain.tunables import default


@dataclass(frozen=True, slots=True)
class BlameConfig:
    """Defaults from :mod:`agents.domain.tunables` (``MOT_BLAME_*``)."""

    half_life_steps: float = default("blame_half_life_steps")  # blame halves per this many steps
    half_life_s: float = default("blame_half_life_s")  # and per this many seconds; 0 = off


class Failure(Struct, frozen=True):
    """One upstream failed moment, as the formula sees it."""

    touchpoint: str
    severity: float  # −q · weight, > 0
    steps_before: int  # journey steps between this moment and the drop-off (≥ 1)
    seconds_before: float  # event time between this moment and the drop-off (≥ 0)


def blame_shares(failures: list[Failure], cfg: BlameConfig) -> list[float]:
    """Each failure's share of the blame, in the same order; they sum to 1 (empty → [])."""
    raw = []
    for f in failures:
        w = max(f.severity, 0.0) * 2.0 ** (-f.steps_before / cfg.half_life_steps)
        if cfg.half_life_s > 0:
            w *= 2.0 ** (-max(f.seconds_before, 0.0) / cfg.half_life_s)
        raw.append(w)
    total = sum(raw)
    if total <= 0.0:  # only possible with zero severities: share equally
        return [1.0 / len(raw)] * len(raw) if raw else []
    return [w / total for w in raw]


def blame_by_touchpoint(failures: list[Failure], shares: list[float]) -> dict[str, float]:
    """Shares summed per touchpoint, in order of each touchpoint's latest failure."""
    out: dict[str, float] = {}
    for f, s in zip(failures, shares, strict=True):
        out[f.touchpoint] = out.pop(f.touchpoint, 0.0) + s
    return out


def culprit(by_touchpoint: dict[str, float]) -> tuple[str, float] | None:
    """The touchpoint with the largest share; on a tie the most recent one (listed last)."""
    best: tuple[str, float] | None = None
    for tp, share in by_touchpoint.items():
        if best is None or share >= best[1] - 1e-12:
            best = (tp, share)
    return best
