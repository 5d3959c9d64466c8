"""The Faust application, configured from :class:`streams.settings.Settings`.

Imported by the agents (they register on ``app``) and by the worker entry point.
"""

from __future__ import annotations

from typing import Any

import faust

from agents.domain.model_config import ModelConfig
from streams.faust_ext.app_transport import MotApp
from streams.faust_ext.batched_restore import BatchedTableManager
from streams.faust_ext.changelog_writer import DirectChangelogTable
from streams.faust_ext.store_options import StoreSettings
from streams.kafka.clients import sasl_mechanism, ssl_context
from streams.settings import Settings
from streams.web_auth import json_errors_middleware

settings = Settings.from_env()
model = ModelConfig.from_settings(settings)


def broker_url(bootstrap_servers: str) -> str:
    """``host1:9092,host2:9092`` → Faust's ``kafka://host1:9092;kafka://host2:9092``."""
    hosts = [h.strip() for h in bootstrap_servers.split(",") if h.strip()]
    return ";".join(h if "://" in h else f"kafka://{h}" for h in hosts)


def broker_credentials(s: Settings) -> Any:
    """TLS and SASL from the environment; ``None`` for plaintext on a trusted network."""
    context = ssl_context(s)
    if s.kafka_security_protocol.upper().startswith("SASL"):
        return faust.SASLCredentials(
            username=s.kafka_sasl_username,
            password=s.kafka_sasl_password,
            mechanism=sasl_mechanism(s),
            ssl_context=context,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


app = MotApp(
    settings.app_id,
    broker=broker_url(settings.kafka_bootstrap_servers),
    broker_credentials=broker_credentials(settings),
    store=settings.store,
    datadir=settings.data_dir,
    autodiscover=False,
    processing_guarantee=settings.processing_guarantee,
    broker_commit_interval=settings.commit_interval_s,
    broker_max_poll_records=settings.max_poll_records,
    broker_session_timeout=settings.kafka_session_timeout_s,
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication_factor,
    topic_allow_declare=True,
    web_bind=settings.web_bind,
    web_host=settings.web_host,
    web_port=settings.web_port,
    web_tables_enabled=False,
    web_metrics_enabled=False,
    # unknown paths and wrong methods answered as JSON like every page (streams.web_auth)
    web_application_options={"middlewares": [json_errors_middleware()]},
    producer_acks=-1,
    # Linger a little so that alerts, changelog and internal records travel in batches:
    # with Faust's default (0) every record is a request of its own.
    producer_linger=settings.producer_linger_ms / 1000.0,
    producer_max_batch_size=settings.producer_batch_bytes,
    # Events an agent may have waiting; with batch delivery each is one partition's
    # records from one fetch.
    stream_buffer_maxsize=settings.stream_buffer_batches,
    Table=DirectChangelogTable,
    TableManager=BatchedTableManager,
    # Workers keeping a standby copy of each other's table partitions, for fast failover.
    table_standby_replicas=settings.standby_replicas,
)


def changelog_topic_configs(s: Settings) -> dict[str, str]:
    """The compaction settings every table's changelog topic is created with, so that a
    restore reads little more than one record per key (docs/operations.md)."""
    return {
        "segment.ms": str(s.changelog_segment_ms),
        "min.cleanable.dirty.ratio": str(s.changelog_min_cleanable_dirty_ratio),
        "delete.retention.ms": str(s.changelog_delete_retention_ms),
    }


app.changelog_topic_configs = changelog_topic_configs(settings)
app.store_settings = StoreSettings(settings.store_compression, settings.store_block_bytes)
if settings.batch_delivery:
    app.batched_topics = frozenset({settings.topic_events})
app.produce_batches = settings.produce_batches  # streams/faust_ext/batch_produce.py
