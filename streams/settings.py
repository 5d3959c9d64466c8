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


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


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
    topic_alerts_circles: str = "mot.alerts.circles"
    topic_alerts_drop_off: str = "mot.alerts.drop-off"
    topic_alerts_touchpoint_status: str = "mot.alerts.touchpoint-status"
    # Worker runtime
    store: str = "rocksdb://"
    data_dir: str = ".mot-data"
    web_bind: str = "127.0.0.1"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    web_route_timeout_s: float = 5.0
    log_level: str = "info"
    producer_linger_ms: int = 5
    producer_batch_bytes: int = 262144
    stream_buffer_batches: int = 16
    batch_delivery: bool = True
    standby_replicas: int = 1
    # Delivery (README: Delivery promise and limits)
    processing_guarantee: str = "at_least_once"
    commit_interval_s: float = 2.8
    max_poll_records: int = 500
    kafka_session_timeout_s: float = 30.0
    consumer_lag_interval_s: float = 5.0
    # Input limits and time policy
    max_record_bytes: int = 65536
    max_lateness_s: float = 7 * 86400.0
    max_future_skew_s: float = 3600.0
    dedupe_window: int = 64
    recent_moments: int = 5
    # Offline replay (mot replay / mot report)
    replay_reorder_buffer: int = 100_000
    # The moments-of-truth model (DOMAIN.md)
    recovery_ratio: float = 12.0
    half_life_days: float = 30.0
    failed_threshold: float = -0.2
    delight_threshold: float = 0.6
    red_quality: float = -0.6
    success_quality: float = 0.5
    failure_severity: float = 1.0
    # Vicious and virtuous circles (README "Circles")
    vicious_failures: int = 3
    vicious_window_h: float = 72.0
    vicious_red_failures: int = 5
    vicious_score_threshold: float = 0.0
    vicious_cooldown_h: float = 24.0
    vicious_memory: int = 16
    virtuous_moments: int = 5
    virtuous_quiet_days: float = 30.0
    # Journeys and drop-off attribution (README "Journeys and drop-off attribution")
    journey_timeout_s: float = 3600.0
    journey_end_touchpoints: str = ""
    journey_max_open: int = 8
    journey_max_moments: int = 16
    journey_check_interval_s: float = 10.0
    journey_idle_advance_s: float = 60.0
    blame_half_life_steps: float = 2.0
    blame_half_life_s: float = 0.0
    # Touchpoint andon (README "Touchpoint andon")
    touchpoint_window_s: float = 300.0
    touchpoint_bucket_s: float = 30.0
    touchpoint_baseline_alpha: float = 0.02
    touchpoint_min_window_events: int = 30
    touchpoint_min_baseline_events: int = 200
    touchpoint_amber_ratio: float = 2.0
    touchpoint_red_ratio: float = 4.0
    touchpoint_min_delta: float = 0.05
    touchpoint_hysteresis: float = 0.8
    touchpoint_flush_s: float = 1.0
    touchpoint_batch_max: int = 1000
    # --- Offline replay at scale (mot replay / mot report; docs/replay.md) -------------
    # Plain fields, kept together at the end: checked by the replay command itself.
    # Customers' states each replay worker keeps in memory (an LRU, count of customers);
    # the rest spill to a temporary RocksDB store. Memory ~ this x workers x state size.
    replay_cache_customers: int = 20_000
    # Directory for the spill store and the workers' scratch files ("" = system temp).
    replay_spill_dir: str = ""
    # Replay worker processes (count); 0 = os.cpu_count(). --workers overrides it.
    replay_workers: int = 0
    # Records per message from the replay parent to a worker (count).
    replay_chunk_events: int = 1024
    # At the end of the input, move each partition's clock on as the stream's idle
    # advance (MOT_JOURNEY_IDLE_ADVANCE_S) would by the replay's clock (bool).
    replay_idle_advance: bool = False
    # Run the stream's silence check (drop-offs of journeys gone silent) in replay (bool);
    # off matches a worker whose MOT_JOURNEY_CHECK_INTERVAL_S timer never fires.
    replay_silence_checks: bool = True

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
                values[f.name] = _boolean(raw) if kind is bool else kind(raw)
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
        if self.consumer_lag_interval_s <= 0:
            problems.append("MOT_CONSUMER_LAG_INTERVAL_S must be > 0")
        problems.extend(self._kafka_security_problems())
        if self.web_route_timeout_s <= 0:
            problems.append("MOT_WEB_ROUTE_TIMEOUT_S must be > 0")
        if self.processing_guarantee not in ("at_least_once", "exactly_once"):
            problems.append("MOT_PROCESSING_GUARANTEE must be at_least_once or exactly_once")
        if self.commit_interval_s <= 0 or self.kafka_session_timeout_s < 6:
            problems.append("MOT_COMMIT_INTERVAL_S must be > 0, MOT_KAFKA_SESSION_TIMEOUT_S >= 6")
        if self.partitions < 1:
            problems.append("MOT_PARTITIONS must be >= 1")
        if self.max_record_bytes < 256:
            problems.append("MOT_MAX_RECORD_BYTES must be >= 256")
        if self.dedupe_window < 0 or self.recent_moments < 0:
            problems.append("MOT_DEDUPE_WINDOW and MOT_RECENT_MOMENTS must be >= 0")
        if self.replay_reorder_buffer < 0:
            problems.append("MOT_REPLAY_REORDER_BUFFER must be >= 0")
        if self.vicious_failures < 1 or self.vicious_window_h <= 0:
            problems.append("MOT_VICIOUS_FAILURES must be >= 1 and MOT_VICIOUS_WINDOW_H > 0")
        if self.vicious_red_failures < self.vicious_failures:
            problems.append("MOT_VICIOUS_RED_FAILURES must be >= MOT_VICIOUS_FAILURES")
        if self.vicious_memory < self.vicious_failures:
            problems.append("MOT_VICIOUS_MEMORY must be >= MOT_VICIOUS_FAILURES")
        if self.vicious_cooldown_h < 0:
            problems.append("MOT_VICIOUS_COOLDOWN_H must be >= 0")
        if self.virtuous_moments < 1 or self.virtuous_quiet_days < 0:
            problems.append("MOT_VIRTUOUS_MOMENTS must be >= 1 and MOT_VIRTUOUS_QUIET_DAYS >= 0")
        problems.extend(self._journey_problems())
        if problems:
            raise SettingsError("; ".join(problems))

    def _kafka_security_problems(self) -> list[str]:
        protocol = self.kafka_security_protocol.upper()
        if protocol not in ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"):
            return ["MOT_KAFKA_SECURITY_PROTOCOL must be PLAINTEXT, SSL, SASL_PLAINTEXT "
                    "or SASL_SSL"]
        if not protocol.startswith("SASL"):
            return []
        problems = []
        if (self.kafka_sasl_mechanism or "PLAIN").upper() not in (
                "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            problems.append("MOT_KAFKA_SASL_MECHANISM must be PLAIN, SCRAM-SHA-256 "
                            "or SCRAM-SHA-512")
        if not self.kafka_sasl_username:
            problems.append("MOT_KAFKA_SASL_USERNAME is required with a SASL protocol")
        return problems

    def _journey_problems(self) -> list[str]:
        """Journeys and touchpoint andon (kept apart so each rule set reads on its own)."""
        problems = []
        if self.journey_timeout_s <= 0 or self.journey_check_interval_s <= 0:
            problems.append("MOT_JOURNEY_TIMEOUT_S and MOT_JOURNEY_CHECK_INTERVAL_S must be > 0")
        if self.journey_idle_advance_s < 0:
            problems.append("MOT_JOURNEY_IDLE_ADVANCE_S must be >= 0")
        if self.journey_max_open < 1 or self.journey_max_moments < 2:
            problems.append("MOT_JOURNEY_MAX_OPEN must be >= 1 and MOT_JOURNEY_MAX_MOMENTS >= 2")
        if self.blame_half_life_steps <= 0 or self.blame_half_life_s < 0:
            problems.append("MOT_BLAME_HALF_LIFE_STEPS must be > 0 and MOT_BLAME_HALF_LIFE_S >= 0")
        if not 0 < self.touchpoint_bucket_s <= self.touchpoint_window_s:
            problems.append("MOT_TOUCHPOINT_BUCKET_S must be within (0, MOT_TOUCHPOINT_WINDOW_S]")
        if not 0 < self.touchpoint_baseline_alpha <= 1:
            problems.append("MOT_TOUCHPOINT_BASELINE_ALPHA must be within (0, 1]")
        if self.touchpoint_min_window_events < 1 or self.touchpoint_min_baseline_events < 1:
            problems.append("MOT_TOUCHPOINT_MIN_WINDOW_EVENTS and "
                            "MOT_TOUCHPOINT_MIN_BASELINE_EVENTS must be >= 1")
        if not 1 < self.touchpoint_amber_ratio <= self.touchpoint_red_ratio:
            problems.append("MOT_TOUCHPOINT_AMBER_RATIO must be > 1 and "
                            "<= MOT_TOUCHPOINT_RED_RATIO")
        if not 0 <= self.touchpoint_min_delta <= 1:
            problems.append("MOT_TOUCHPOINT_MIN_DELTA must be within [0, 1]")
        if not 0 < self.touchpoint_hysteresis <= 1:
            problems.append("MOT_TOUCHPOINT_HYSTERESIS must be within (0, 1]")
        if self.touchpoint_flush_s <= 0 or self.touchpoint_batch_max < 1:
            problems.append("MOT_TOUCHPOINT_FLUSH_S must be > 0 and "
                            "MOT_TOUCHPOINT_BATCH_MAX >= 1")
        if self.max_poll_records < 1:
            problems.append("MOT_MAX_POLL_RECORDS must be >= 1")
        if self.stream_buffer_batches < 1:
            problems.append("MOT_STREAM_BUFFER_BATCHES must be >= 1")
        if self.standby_replicas < 0:
            problems.append("MOT_STANDBY_REPLICAS must be >= 0")
        return problems
