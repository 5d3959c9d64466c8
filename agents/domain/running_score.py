"""The customer's running score: a decayed, asymmetric tally of moments of truth.

    S ← S · 2^(−Δt / H) + Δ,   Δ = w·q if q ≥ 0,  Δ = w·q·λ if q < 0

Out-of-order policy: the score is kept *as of the latest event time seen* (``at``).
An event later than ``at`` decays the score forward to its own time; an earlier
(late) event adds its contribution decayed back to ``at``. Both cases give
S(T) = Σ Δᵢ · 2^(−(T − tᵢ)/H), a sum whose value does not depend on arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.domain.tunables import DAY, default


@dataclass(frozen=True, slots=True)
class ScoreConfig:
    """λ and H; defaults from :mod:`agents.domain.tunables` (H declared in days)."""

    recovery_ratio: float = default("recovery_ratio")
    half_life_s: float = default("half_life_days") * DAY


def contribution(q: float, weight: float, cfg: ScoreConfig) -> float:
    """Δ of one moment: failures weigh λ times as much as successes."""
    delta = weight * q
    return delta * cfg.recovery_ratio if q < 0 else delta


def decay_factor(dt_s: float, half_life_s: float) -> float:
    """2^(−Δt/H), always in (0, 1] for Δt ≥ 0: decay shrinks a score, never flips it."""
    return 2.0 ** (-dt_s / half_life_s) if dt_s > 0 else 1.0


def apply_moment(
    score: float, at: float | None, q: float, weight: float, occurred_at: float, cfg: ScoreConfig
) -> tuple[float, float]:
    """Return ``(score, at)`` after one moment at event time ``occurred_at`` (epoch s)."""
    delta = contribution(q, weight, cfg)
    if at is None:
        return delta, occurred_at
    if occurred_at >= at:
        return score * decay_factor(occurred_at - at, cfg.half_life_s) + delta, occurred_at
    return score + delta * decay_factor(at - occurred_at, cfg.half_life_s), at


def score_at(score: float, at: float | None, when: float, cfg: ScoreConfig) -> float:
    """The score as it stands at a later time ``when`` with no further moments."""
    if at is None:
        return 0.0
    return score * decay_factor(when - at, cfg.half_life_s)
