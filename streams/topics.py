"""The Kafka topics the service reads and writes. Keys are raw UTF-8 (customer ids or
touchpoints), values raw bytes: the agents decode with orjson themselves so that a bad
record reaches the dead-letter topic unchanged instead of failing inside the framework."""

from __future__ import annotations

from faust.types import TopicT

from streams.app import app, settings


def raw_topic(name: str, *, internal: bool = False) -> TopicT:
    """A topic of raw bytes with the service's partition count; ``internal`` ones
    (named after the app id) are created by Faust itself."""
    return app.topic(
        name,
        internal=internal,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.partitions,
    )


events_topic = raw_topic(settings.topic_events)
dead_letter_topic = raw_topic(settings.topic_dead_letter)
failed_moment_alerts_topic = raw_topic(settings.topic_alerts_failed_moment)
drop_off_alerts_topic = raw_topic(settings.topic_alerts_drop_off)
touchpoint_status_alerts_topic = raw_topic(settings.topic_alerts_touchpoint_status)
circle_alerts_topic = raw_topic(settings.topic_alerts_circles)  # vicious and virtuous circles
# The published versions of the rules: one partition, compacted, keyed by version. Every
# worker reads all of it with a consumer of its own (agents/rules_topic.py), not through an
# agent, so Faust does not create it: streams.kafka.admin.ensure_topics does (compacted).
rules_topic = app.topic(settings.topic_rules, key_type=bytes, value_type=bytes,
                        key_serializer="raw", value_serializer="raw", partitions=1,
                        compacting=True)
