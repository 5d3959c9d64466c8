"""Topic creation for a fresh cluster (the embedded broker or an operator's own)."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from streams.kafka.clients import client_options
from streams.settings import Settings


def service_topics(s: Settings) -> list[str]:
    """Every topic the service reads or writes, apart from Faust's own internal ones."""
    return [s.topic_events, s.topic_dead_letter, s.topic_alerts_failed_moment,
            s.topic_alerts_circles,
            s.topic_alerts_drop_off, s.topic_alerts_touchpoint_status,
            s.topic_erasure_requests, s.topic_erasure_receipts, s.topic_rules]


def new_topic(s: Settings, name: str) -> NewTopic:
    """A topic as the service creates it; the rules topic has one partition, compacted (the
    latest record of each version is kept for ever, so every worker reads every version)."""
    if name == s.topic_rules:
        return NewTopic(name, 1, s.replication_factor,
                        topic_configs={"cleanup.policy": "compact"})
    return NewTopic(name, s.partitions, s.replication_factor)


async def ensure_topics(s: Settings, names: list[str] | None = None) -> list[str]:
    """Create the missing topics with the configured partitions; return the ones created."""
    names = service_topics(s) if names is None else names
    admin = AIOKafkaAdminClient(**client_options(s))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if missing:
            topics = [new_topic(s, n) for n in missing]
            with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent creator won
                await admin.create_topics(topics)
        return missing
    finally:
        await admin.close()
