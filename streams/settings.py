"""One settings object for the whole service, read from ``MOT_*`` environment variables.

Every tunable of the domain (λ, half-life, thresholds) and of the runtime (topics,
ports, limits) lives here, so an operator changes behaviour without touching code.
The README lists every variable with its default.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


@dataclass(frozen=True, slots=True)
class Settings:
    # Kafka
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    app_id: str = "mot"
    partitions: int = 6
    replication_factor: int = 1
    topic_events: str = "mot.touchpoints"
    topic_dead_letter: str = "mot.touchpoints.dead-letter"
    topic_alerts_failed_moment: str = "mot.alerts.failed-moment"
    # Worker runtime
    store: str = "rocksdb://"
    data_dir: str = ".mot-data"
    web_bind: str = "127.0.0.1"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    log_level: str = "info"
    # Input limits and time policy
    max_record_bytes: int = 65536
    max_lateness_s: float = 7 * 86400.0
    max_future_skew_s: float = 3600.0
    dedupe_window: int = 64
    recent_moments: int = 5
    # The moments-of-truth model (DOMAIN.md)
    recovery_ratio: float = 12.0
    half_life_days: float = 30.0
    failed_threshold: float = -0.2
    delight_threshold: float = 0.6
    red_quality: float = -0.6
    success_quality: float = 0.5
    failure_severity: float = 1.0

    @property
    def half_life_s(self) -> float:
        return self.half_life_days * 86400.0

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``MOT_<FIELD>`` variables; unknown ``MOT_`` names are ignored."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            name = "MOT_" + f.name.upper()
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            kind = type(cls.__dataclass_fields__[f.name].default)
            try:
                values[f.name] = kind(raw)
            except ValueError as exc:
                raise SettingsError(f"{name}={raw!r}: expected {kind.__name__}") from exc
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings

    def check(self) -> None:
        """Reject values that would make the model meaningless, naming the variable."""
        problems = []
        if self.recovery_ratio <= 0:
            problems.append("MOT_RECOVERY_RATIO must be > 0")
        if self.half_life_days <= 0:
            problems.append("MOT_HALF_LIFE_DAYS must be > 0")
        if not -1.0 <= self.failed_threshold <= 1.0:
            problems.append("MOT_FAILED_THRESHOLD must be within [-1, 1]")
        if not -1.0 <= self.delight_threshold <= 1.0:
            problems.append("MOT_DELIGHT_THRESHOLD must be within [-1, 1]")
        if not -1.0 <= self.red_quality <= self.failed_threshold:
            problems.append("MOT_RED_QUALITY must be within [-1, MOT_FAILED_THRESHOLD]")
        if not -1.0 <= self.success_quality <= 1.0:
            problems.append("MOT_SUCCESS_QUALITY must be within [-1, 1]")
        if not 0.0 < self.failure_severity <= 1.0:
            problems.append("MOT_FAILURE_SEVERITY must be within (0, 1]")
        if self.partitions < 1:
            problems.append("MOT_PARTITIONS must be >= 1")
        if self.max_record_bytes < 256:
            problems.append("MOT_MAX_RECORD_BYTES must be >= 256")
        if self.dedupe_window < 0 or self.recent_moments < 0:
            problems.append("MOT_DEDUPE_WINDOW and MOT_RECENT_MOMENTS must be >= 0")
        if problems:
            raise SettingsError("; ".join(problems))
