"""Shared fixtures. In-process imports of the app use the memory store; worker
processes started by the tests use the service's real RocksDB store."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

os.environ.setdefault("MOT_STORE", "memory://")
os.environ.setdefault("MOT_DATA_DIR", tempfile.mkdtemp(prefix="mot-unit-"))


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """Bootstrap servers of a real Kafka broker: ``MOT_TEST_KAFKA_BOOTSTRAP`` if set,
    else the repo's embedded broker, started once for the session and stopped after."""
    existing = os.environ.get("MOT_TEST_KAFKA_BOOTSTRAP")
    if existing:
        yield existing
        return
    from streams.kafka.local_kafka import LocalKafka, kafka_classpath

    kafka_classpath()  # a first run resolves the broker with Maven, outside the start timeout
    broker = LocalKafka()
    try:
        yield broker.start(timeout=120)
    finally:
        broker.stop()
