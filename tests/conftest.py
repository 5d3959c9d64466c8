"""Shared fixtures. In-process imports of the app use the memory store; worker
processes started by the tests use the service's real RocksDB store.

Hypothesis runs under the ``dev`` profile by default and under ``ci`` when ``CI=true``:
more examples, a fresh random seed printed in the report header (rerun a failure with
``--hypothesis-seed=N``) and the failing example's blob printed for ``@reproduce_failure``.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Iterator

import pytest
from hypothesis import core as hypothesis_core
from hypothesis import settings

from tests.tools import in_ci
from tests.tools import pytest_runtest_setup as pytest_runtest_setup  # the requires_tool marker

pytest_plugins = ["pytester"]  # tests/test_tools.py runs pytest inside pytest

os.environ.setdefault("MOT_STORE", "memory://")
os.environ.setdefault("MOT_DATA_DIR", tempfile.mkdtemp(prefix="mot-unit-"))

settings.register_profile("dev", max_examples=100)
settings.register_profile("ci", max_examples=500, derandomize=False, print_blob=True)
settings.load_profile("ci" if in_ci() else "dev")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Under CI, one random seed for the run unless ``--hypothesis-seed`` gave one, so the
    header can name it. Declares the ``requires_tool`` marker (``--strict-markers``)."""
    config.addinivalue_line(
        "markers", "requires_tool(*names): needs one of these programs on PATH; skipped "
        "when missing, failed under CI=true")
    if in_ci() and config.getoption("hypothesis_seed", None) is None:
        config.option.hypothesis_seed = str(random.SystemRandom().randrange(2**32))


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.getoption("hypothesis_seed", None) or hypothesis_core.global_force_seed
    return (f"hypothesis: profile {settings.get_current_profile_name()!r}, "
            f"seed {seed if seed is not None else 'random per test'}"
            + (f" (rerun with --hypothesis-seed={seed})" if seed is not None else ""))


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
