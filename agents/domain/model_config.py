"""The model's tunables gathered in one immutable value the pure functions take."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.domain.circles import CircleConfig
from agents.domain.journeys import JourneyConfig
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
    circles: CircleConfig = field(default_factory=CircleConfig)
    journeys: JourneyConfig = field(default_factory=JourneyConfig)

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
            circles=CircleConfig(
                vicious_failures=s.vicious_failures,
                vicious_window_s=s.vicious_window_h * 3600.0,
                vicious_red_failures=s.vicious_red_failures,
                vicious_score_threshold=s.vicious_score_threshold,
                vicious_cooldown_s=s.vicious_cooldown_h * 3600.0,
                vicious_memory=s.vicious_memory,
                virtuous_moments=s.virtuous_moments,
                virtuous_quiet_s=s.virtuous_quiet_days * 86400.0,
            ),
            journeys=JourneyConfig.from_settings(s),
        )
