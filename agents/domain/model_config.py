"""The model's tunables gathered in one immutable value the pure functions take."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.domain.quality import QualityConfig
from agents.domain.running_score import ScoreConfig


@dataclass(frozen=True, slots=True)
class ModelConfig:
    quality: QualityConfig = field(default_factory=QualityConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    max_lateness_s: float = 7 * 86400.0
    max_future_skew_s: float = 3600.0
    dedupe_window: int = 64
    recent_moments: int = 5

    @classmethod
    def from_settings(cls, s: Any) -> ModelConfig:
        """Take the model's fields from a ``streams.settings.Settings`` (duck-typed)."""
        return cls(
            quality=QualityConfig(
                success_quality=s.success_quality,
                failure_severity=s.failure_severity,
                failed_threshold=s.failed_threshold,
                delight_threshold=s.delight_threshold,
                red_quality=s.red_quality,
            ),
            score=ScoreConfig(recovery_ratio=s.recovery_ratio, half_life_s=s.half_life_s),
            max_lateness_s=s.max_lateness_s,
            max_future_skew_s=s.max_future_skew_s,
            dedupe_window=s.dedupe_window,
            recent_moments=s.recent_moments,
        )
