"""One settings object for the whole service, read from ``MOT_*`` environment variables.

Every tunable is declared once, with its type, default, unit and meaning: the model's in
:mod:`agents.domain.tunables` (the domain may not import this package), the runtime's
(Kafka, topics, worker, delivery, replay) here. :class:`Settings` is built from both, and
``docs/configuration.md`` is generated from both::

    python -m streams.settings --markdown > docs/configuration.md

A new setting is one ``Tunable`` in a section below (a model tunable: in
``agents/domain/tunables.py``, and passed on in ``ModelConfig.from_settings``), a rule in
:meth:`Settings.check` if some values are unusable (stated in the tunable's ``rule``), and
the doc regenerated; ``Settings`` and ``MOT_<NAME>`` follow from the declaration.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import field, fields, make_dataclass
from pathlib import Path
from types import MappingProxyType

from agents.domain.tunables import DAY, MODEL, UNITS, Section, Tunable, merge_sections

REGENERATE = "python -m streams.settings --markdown > docs/configuration.md"


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)


T = Tunable
_PERF = "[`docs/performance.md`](performance.md)"
_DELIVERY = "[delivery](delivery.md)"
STORE_COMPRESSIONS = ("zstd", "lz4", "snappy", "none")  # MOT_STORE_COMPRESSION

KAFKA = Section("Kafka", (
    T("kafka_bootstrap_servers", str, "127.0.0.1:9092", "address",
      "Kafka cluster (`host:port,host:port`)"),
    T("kafka_security_protocol", str, "PLAINTEXT", "name",
      "how clients reach the brokers: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`",
      "one of those four"),
    T("kafka_sasl_mechanism", str, "", "name",
      "SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; empty: `PLAIN` when SASL",
      "one of those three, with a SASL protocol"),
    T("kafka_sasl_username", str, "", "secret",
      "SASL credentials: the user name", "required with a SASL protocol"),
    T("kafka_sasl_password", str, "", "secret", "SASL credentials: the password"),
    T("kafka_ssl_cafile", str, "", "path",
      "TLS trust and client certificate: the CA bundle that signs the brokers' certificates"),
    T("kafka_ssl_certfile", str, "", "path",
      "TLS trust and client certificate: this client's certificate (mutual TLS)"),
    T("kafka_ssl_keyfile", str, "", "path",
      "TLS trust and client certificate: this client's private key (mutual TLS)"),
    T("app_id", str, "mot", "name", "consumer group and prefix of internal topics"),
    T("partitions", int, 6, "count",
      "partitions of the topics the service creates", "≥ 1"),
    T("replication_factor", int, 1, "count", "their replication factor"),
))

TOPICS = Section("Topics", (
    T("topic_events", str, "mot.touchpoints", "name", "input: touchpoint events"),
    T("topic_dead_letter", str, "mot.touchpoints.dead-letter", "name",
      "rejected records, with the reason"),
    T("topic_alerts_failed_moment", str, "mot.alerts.failed-moment", "name",
      "failed-moment alerts"),
    T("topic_alerts_circles", str, "mot.alerts.circles", "name",
      "vicious- and virtuous-circle lifecycle events"),
    T("topic_alerts_drop_off", str, "mot.alerts.drop-off", "name", "drop-off alerts"),
    T("topic_alerts_touchpoint_status", str, "mot.alerts.touchpoint-status", "name",
      "touchpoint andon transitions"),
    T("topic_erasure_requests", str, "mot.erasure-requests", "name",
      "input: right-to-be-forgotten requests (`mot forget`, or any producer keyed by "
      "customer; see [privacy](privacy.md))"),
    T("topic_erasure_receipts", str, "mot.erasure-receipts", "name",
      "one receipt per handled erasure request"),
    T("topic_rules", str, "mot.rules", "name",
      "the published versions of the rules (one partition, compacted, keyed by version; "
      "`mot rules publish`, see [rules](rules.md))"),
))

RULES = Section("Rules", (
    T("rules_min_lead_s", float, 30.0, "s",
      "`mot rules publish` refuses an `effective_from` earlier than the wall clock plus "
      "this, and sets it to that when the document has none: the time workers have to "
      "learn a version before events it applies to arrive (see [rules](rules.md))", "≥ 0"),
))

_PRIVACY = "[privacy](privacy.md)"
ERASURE = Section("Erasure and privacy", (
    T("erasure_hash_key_file", str, "", "path",
      "file holding the key of the keyed hash (HMAC-SHA256) that stands for an erased "
      "customer in receipts, the suppression list and hashed alerts; read first",
      "a key (file or `MOT_ERASURE_HASH_KEY`) is required unless every broker is on "
      "loopback"),
    T("erasure_hash_key", str, "", "secret",
      "the same key given inline, when there is no key file; with neither and every broker "
      "on loopback, a fixed key for local use only (see " + _PRIVACY + ")"),
    T("erasure_suppression_s", float, 30 * DAY, "s",
      "how long after an erasure the customer's later events follow "
      "`MOT_ERASURE_POLICY`", "≥ 0"),
    T("erasure_policy", str, "dead-letter", "name",
      "what happens to a later event of an erased customer during the suppression period: "
      "`dead-letter` (reason `erased`, payload not copied), `drop-counted` (dropped, "
      "counted in `mot_erasure_suppressed_total`), `accept` (a new, empty state)",
      "one of those three"),
    T("alert_customer_id", str, "plain", "name",
      "the `customer_id` (and record key) of the customer alerts: `plain`, or `hashed` "
      "(the keyed hash)", "`plain` or `hashed`"),
))

WORKER = Section("Worker and web port", (
    T("store", str, "rocksdb://", "name", "table store (`memory://` only for tests)"),
    T("data_dir", str, ".mot-data", "path", "local state (RocksDB)"),
    T("web_bind", str, "127.0.0.1", "address",
      "interface of the web port (set `0.0.0.0` in a container)"),
    T("web_host", str, "127.0.0.1", "address",
      "host name other workers use to reach this one"),
    T("web_port", int, 6066, "port", "web port: `/metrics`, `/health`, `/customers/{id}`"),
    T("web_route_timeout_s", float, 5.0, "s",
      "how long a worker waits for the owner of a customer's partition to answer a "
      "forwarded `GET /customers/{id}`", "> 0"),
    T("log_level", str, "info", "name",
      "the worker's log level: `debug`, `info`, `warning`, `error`"),
))

DELIVERY = Section("Delivery", (
    T("processing_guarantee", str, "at_least_once", "name",
      "the delivery promise, at-least-once (see " + _DELIVERY + "); `exactly_once` "
      "(Faust's transactions) is refused at start: the RocksDB tables are not part of "
      "the transaction, and the fault tests lost alerts with it",
      "`at_least_once` only"),
    T("commit_interval_s", float, 2.8, "s",
      "how often processed offsets are committed: what a crash makes the worker read again",
      "> 0"),
    T("max_poll_records", int, 500, "count",
      "most records one fetch returns (and so the largest input batch)", "≥ 1"),
    T("kafka_session_timeout_s", float, 30.0, "s",
      "how long the group waits for a silent worker before moving its partitions (≥ 6)",
      "≥ 6"),
    T("producer_linger_ms", int, 5, "ms",
      "how long the producer waits to batch records (latency vs. throughput)"),
    T("producer_batch_bytes", int, 262144, "bytes",
      "largest producer batch per partition"),
    T("stream_buffer_batches", int, 16, "count",
      "events an agent may have waiting (for the scoring agent with batch delivery, each "
      "one partition's records from one fetch); bounds the worker's read-ahead", "≥ 1"),
    T("batch_delivery", bool, True, "switch",
      "deliver the input topic to the scoring agent in batches (one per partition and "
      "fetch), several times the throughput per worker; `false` hands it over record by "
      "record (Faust's own path). Both keep the delivery promise; CI runs the fault tests "
      "both ways (see " + _PERF + ")"),
    T("produce_batches", bool, False, "switch",
      "hand changelog records and the scoring agent's alerts to the producer as one "
      "pre-built batch per partition (aiokafka's `send_batch`) instead of record by record; "
      "off by default: one benchmark run stalled with it, a commit waiting on a producer "
      "batch that never completed (see " + _PERF + ")"),
    T("standby_replicas", int, 1, "count",
      "standby copies of each table partition kept by other workers: a worker taking "
      "over a partition has its state at once instead of restoring it from the "
      "changelog. Its changelog records are applied a fetch at a time in one RocksDB "
      "write batch, as a restore's are (see " + _PERF + ")", "≥ 0"),
    T("store_compression", str, "zstd", "name",
      "compression of the tables' local RocksDB files: `zstd`, `lz4`, `snappy` (RocksDB's "
      "default) or `none`; zstd keeps the customer state in about three quarters of "
      "snappy's disk (see " + _PERF + ")", "zstd, lz4, snappy or none"),
    T("store_block_bytes", int, 16384, "bytes",
      "size of the tables' RocksDB data blocks, the unit compressed and cached: larger "
      "blocks compress better, each lookup reads one (RocksDB's default is 4096)",
      "1024 to 1048576"),
    T("changelog_segment_ms", int, 600_000, "ms",
      "`segment.ms` of the tables' changelog topics: the open segment is never compacted, "
      "so this bounds how much of a changelog a restore reads uncompacted (Kafka's "
      "default is 7 days; see [operations](operations.md#changelog-compaction))", "≥ 1000"),
    T("changelog_min_cleanable_dirty_ratio", float, 0.1, "fraction",
      "`min.cleanable.dirty.ratio` of the changelog topics: the share of superseded "
      "records at which the broker compacts (Kafka's default 0.5 lets a restore read up "
      "to twice the records it keeps)", "within (0, 1)"),
    T("changelog_delete_retention_ms", int, 86_400_000, "ms",
      "`delete.retention.ms` of the changelog topics: how long a tombstone (an erased "
      "customer) stays after compaction, so a standby or a restore behind by less than "
      "this still sees the delete", "≥ 0"),
    T("consumer_lag_interval_s", float, 5.0, "s",
      "how often a worker measures its consumer lag (`mot_consumer_lag_messages`)", "> 0"),
))

# Same title as the model's section: documented together.
INPUT = Section("Input limits and time policy", (
    T("max_record_bytes", int, 65536, "bytes",
      "larger records are dead-lettered (`too_large`)", "≥ 256"),
))

REPLAY = Section("Offline replay", (
    T("replay_reorder_buffer", int, 100_000, "count",
      "`mot replay`/`report`: records held to put a file in event-time order", "≥ 0"),
    T("replay_cache_customers", int, 50_000, "count",
      "customers' states each replay worker keeps in memory (encoded); the rest spill to a "
      "temporary RocksDB store (memory ≈ this × workers × encoded state size, 0.6–1.5 KB)",
      "≥ 1"),
    T("replay_spill_dir", str, "", "path",
      "directory of the spill store and the workers' scratch files; empty: the system's "
      "temporary directory"),
    T("replay_workers", int, 0, "count",
      "replay worker processes (customers hashed over them as the topic's partitioner "
      "does); `0`: every core; `--workers` overrides it", "≥ 0"),
    T("replay_chunk_events", int, 1024, "count",
      "records per message from the replay parent to a worker", "≥ 1"),
    T("replay_idle_advance", bool, False, "switch",
      "at the end of the input, move each partition's clock on as the stream's "
      "`MOT_JOURNEY_IDLE_ADVANCE_S` would by the replay's clock (now or `--as-of`), so "
      "journeys still open then drop off as silent (see [replay](replay.md))"),
    T("replay_silence_checks", bool, True, "switch",
      "run the stream's silence check in replay (drop-offs of journeys gone silent); "
      "`false` matches a worker whose check never fires"),
))

JOURNEY_TIMERS = Section("Journeys and drop-off attribution", (
    T("journey_check_interval_s", float, 10.0, "s",
      "how often each worker looks for silent journeys", "> 0"),
    T("journey_idle_advance_s", float, 60.0, "s",
      "a partition quiet this long (wall clock): its event-time clock follows the wall "
      "clock", "≥ 0"),
))

ANDON_BATCHING = Section("Touchpoint andon", (
    T("touchpoint_flush_s", float, 1.0, "s",
      "touchpoint andon: how often a worker sends the moments it counted, batched per "
      "touchpoint", "> 0"),
    T("touchpoint_batch_max", int, 1000, "count",
      "touchpoint andon: a touchpoint's batch is sent at once when it holds this many "
      "moments", "≥ 1"),
))

WEB_ACCESS = Section("Web access", (
    T("web_token", str, "", "secret",
      "bearer token of the data pages (`/customers`, `/touchpoints`), for local use; "
      "accepted beside the file's tokens (see [security](security.md))"),
    T("web_token_file", str, "", "path",
      "file of bearer tokens, one a line (a mounted Kubernetes or Docker secret), re-read "
      "when it changes; the first is the one sent to other workers",
      "an existing, non-empty file; a token is required when `MOT_WEB_BIND` is beyond "
      "loopback"),
    T("metrics_token_file", str, "", "path",
      "if set, `/metrics` needs a token from this file (or the data token)",
      "an existing, non-empty file"),
    T("web_max_in_flight", int, 200, "count",
      "protected requests a worker works on at once; more are answered 429", "≥ 1"),
))

# Every tunable, runtime and model, in the order they are documented.
SECTIONS: tuple[Section, ...] = merge_sections(
    (KAFKA, TOPICS, WORKER, WEB_ACCESS, DELIVERY, INPUT, *MODEL, JOURNEY_TIMERS, ANDON_BATCHING,
     RULES, ERASURE, REPLAY))
TUNABLES: Mapping[str, Tunable] = MappingProxyType(
    {t.name: t for s in SECTIONS for t in s.tunables})


class _SettingsMethods:
    """What :class:`Settings` does beyond holding its fields (built from the declaration)."""

    __slots__ = ()

    @property
    def half_life_s(self) -> float:
        return self.half_life_days * DAY

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``MOT_<FIELD>`` variables; unknown ``MOT_`` names are ignored."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            tunable = TUNABLES[f.name]
            name = tunable.variable
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            kind = tunable.kind
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
        if self.processing_guarantee == "exactly_once":
            problems.append(
                "MOT_PROCESSING_GUARANTEE=exactly_once is not supported: the RocksDB tables "
                "are not part of Faust's transactions, so a worker killed mid-transaction "
                "loses alerts (the fault tests lost 148 of 853); use at_least_once")
        elif self.processing_guarantee != "at_least_once":
            problems.append("MOT_PROCESSING_GUARANTEE must be at_least_once")
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
        if self.replay_workers < 0:
            problems.append("MOT_REPLAY_WORKERS must be >= 0")
        if self.replay_cache_customers < 1 or self.replay_chunk_events < 1:
            problems.append("MOT_REPLAY_CACHE_CUSTOMERS and MOT_REPLAY_CHUNK_EVENTS must be >= 1")
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
        problems.extend(self._web_access_problems())
        problems.extend(self._erasure_problems())
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

    def _erasure_problems(self) -> list[str]:
        problems = []
        if self.rules_min_lead_s < 0:
            problems.append("MOT_RULES_MIN_LEAD_S must be >= 0")
        if self.erasure_suppression_s < 0:
            problems.append("MOT_ERASURE_SUPPRESSION_S must be >= 0")
        if self.erasure_policy not in ("dead-letter", "drop-counted", "accept"):
            problems.append("MOT_ERASURE_POLICY must be dead-letter, drop-counted or accept")
        if self.alert_customer_id not in ("plain", "hashed"):
            problems.append("MOT_ALERT_CUSTOMER_ID must be plain or hashed")
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
        if self.changelog_segment_ms < 1000:
            problems.append("MOT_CHANGELOG_SEGMENT_MS must be >= 1000")
        if not 0 < self.changelog_min_cleanable_dirty_ratio < 1:
            problems.append("MOT_CHANGELOG_MIN_CLEANABLE_DIRTY_RATIO must be within (0, 1)")
        if self.changelog_delete_retention_ms < 0:
            problems.append("MOT_CHANGELOG_DELETE_RETENTION_MS must be >= 0")
        if self.store_compression not in STORE_COMPRESSIONS:
            problems.append("MOT_STORE_COMPRESSION must be one of "
                            + ", ".join(STORE_COMPRESSIONS))
        if not 1024 <= self.store_block_bytes <= 1_048_576:
            problems.append("MOT_STORE_BLOCK_BYTES must be within [1024, 1048576]")
        return problems


    def _web_access_problems(self) -> list[str]:
        """A web port reachable beyond loopback serves customer data only with a token."""
        problems = []
        if self.web_max_in_flight < 1:
            problems.append("MOT_WEB_MAX_IN_FLIGHT must be >= 1")
        for name, path in (("MOT_WEB_TOKEN_FILE", self.web_token_file),
                           ("MOT_METRICS_TOKEN_FILE", self.metrics_token_file)):
            if path and not _token_file_usable(path):
                problems.append(f"{name}={path!r} must name a readable file holding "
                                "a token")
        if not self.web_token and not self.web_token_file and not _loopback(self.web_bind):
            problems.append(f"MOT_WEB_BIND={self.web_bind!r} is reachable beyond loopback: "
                            "set MOT_WEB_TOKEN_FILE (a mounted secret) or MOT_WEB_TOKEN "
                            "so that the customer pages need a bearer token")
        return problems



def _loopback(bind: str) -> bool:
    host = bind.strip().strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _token_file_usable(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as f:
            return any(line.strip() for line in f)
    except (OSError, UnicodeDecodeError):
        return False


Settings = make_dataclass(
    "Settings",
    [(t.name, t.kind, field(default=t.default)) for t in TUNABLES.values()],
    bases=(_SettingsMethods,),
    frozen=True,
    slots=True,
    namespace={"__module__": __name__, "__doc__":
               "Every tunable as a field named as declared (``settings.half_life_days``); "
               "``Settings()`` holds the declared defaults, :meth:`from_env` reads "
               "``MOT_<NAME>``."},
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _shown(t: Tunable) -> str:
    """A default as an operator would write it."""
    if t.kind is bool:
        return "`true`" if t.default else "`false`"
    if t.kind is float:
        return f"`{t.default:g}`"
    return f"`{t.default}`" if t.default != "" else "(empty)"


def _rule(t: Tunable) -> str:
    return re.sub(r"(MOT_[A-Z_]+)", r"`\1`", t.rule)


_KIND = {bool: "bool", int: "int", float: "float", str: "text"}


def markdown() -> str:
    """``docs/configuration.md``: every tunable, by section, from the declaration."""
    lines = [
        "# Configuration",
        "",
        f"<!-- Generated from the declaration by `{REGENERATE}`; do not edit. -->",
        "",
        "Every setting is an environment variable `MOT_<NAME>`, read once at start into one "
        "`Settings` object (`streams/settings.py`). The model's tunables are declared in "
        "`agents/domain/tunables.py`, the runtime's in `streams/settings.py`; this page is "
        "generated from both. An unset or empty variable keeps the default. A value of the "
        "wrong type, or one the `valid` column rules out, stops the worker at start with the "
        "variable's name.",
        "",
    ]
    for section in SECTIONS:
        lines += [f"## {section.title}", "",
                  "| variable | type | default | unit | meaning | valid |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| `{t.variable}` | {_KIND[t.kind]} | {_shown(t)} | {_cell(t.unit)} | "
                  f"{_cell(t.meaning)} | {_cell(_rule(t))} |"
                  for t in section.tunables]
        lines.append("")
    lines += ["## Units", "", "| unit | meaning |", "|---|---|"]
    lines += [f"| {_cell(u)} | {_cell(m)} |" for u, m in UNITS.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--markdown"]:
        sys.exit(f"usage: {REGENERATE}")
    sys.stdout.write(markdown())
