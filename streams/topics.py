"""The Kafka topics the service reads and writes. Keys are raw UTF-8 customer ids,
values raw bytes: the agents decode with orjson themselves so that a bad record
reaches the dead-letter topic unchanged instead of failing inside the framework."""

from __future__ import annotations

from streams.app import app, settings

events_topic = app.topic(
    settings.topic_events,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
dead_letter_topic = app.topic(
    settings.topic_dead_letter,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
failed_moment_alerts_topic = app.topic(
    settings.topic_alerts_failed_moment,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
drop_off_alerts_topic = app.topic(
    settings.topic_alerts_drop_off,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
touchpoint_status_alerts_topic = app.topic(
    settings.topic_alerts_touchpoint_status,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
circle_alerts_topic = app.topic(  # vicious- and virtuous-circle lifecycle events
    settings.topic_alerts_circles,
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=settings.partitions,
)
