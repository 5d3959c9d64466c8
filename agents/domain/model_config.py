"""The model's tunables gathered in one immutable value the pure functions take.

:meth:`ModelConfig.from_settings` is the one place the domain configs are built from
settings; their defaults (``ModelConfig()``) come from :mod:`agents.domain.tunables`, the
same declaration ``Settings`` is built from, so both give the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.domain.attribution import BlameConfig
from agents.domain.circles import CircleConfig
from agents.domain.journeys import JourneyConfig, touchpoint_list
from agents.domain.quality import QualityConfig
from agents.domain.running_score import ScoreConfig
from agents.domain.touchpoint_status import StatusConfig
from agents.domain.tunables import DAY, ENV_VERSION, HOUR, default


@dataclass(frozen=True, slots=True)
class ModelConfig:
    quality: QualityConfig = field(default_factory=QualityConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    max_lateness_s: float = default("max_lateness_s")
    max_future_skew_s: float = default("max_future_skew_s")
    dedupe_window: int = default("dedupe_window")
    recent_moments: int = default("recent_moments")
    circles: CircleConfig = field(default_factory=CircleConfig)
    journeys: JourneyConfig = field(default_factory=JourneyConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    rules_version: str = ENV_VERSION  # every alert computed under this model carries it

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
            score=ScoreConfig(recovery_ratio=s.recovery_ratio,
                              half_life_s=s.half_life_days * DAY),
            max_lateness_s=s.max_lateness_s,
            max_future_skew_s=s.max_future_skew_s,
            dedupe_window=s.dedupe_window,
            recent_moments=s.recent_moments,
            circles=CircleConfig(
                vicious_failures=s.vicious_failures,
                vicious_window_s=s.vicious_window_h * HOUR,
                vicious_red_failures=s.vicious_red_failures,
                vicious_score_threshold=s.vicious_score_threshold,
                vicious_cooldown_s=s.vicious_cooldown_h * HOUR,
                vicious_memory=s.vicious_memory,
                virtuous_moments=s.virtuous_moments,
                virtuous_quiet_s=s.virtuous_quiet_days * DAY,
            ),
            journeys=JourneyConfig(
                timeout_s=s.journey_timeout_s,
                end_touchpoints=touchpoint_list(s.journey_end_touchpoints),
                max_open=s.journey_max_open,
                max_moments=s.journey_max_moments,
                blame=BlameConfig(half_life_steps=s.blame_half_life_steps,
                                  half_life_s=s.blame_half_life_s),
            ),
            status=StatusConfig(
                window_s=s.touchpoint_window_s,
                bucket_s=s.touchpoint_bucket_s,
                baseline_alpha=s.touchpoint_baseline_alpha,
                min_window_events=s.touchpoint_min_window_events,
                min_baseline_events=s.touchpoint_min_baseline_events,
                amber_ratio=s.touchpoint_amber_ratio,
                red_ratio=s.touchpoint_red_ratio,
                min_delta=s.touchpoint_min_delta,
                hysteresis=s.touchpoint_hysteresis,
            ),
        )
