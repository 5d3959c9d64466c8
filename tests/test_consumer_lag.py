"""Consumer lag: the arithmetic, the gauge's series, and real workers sharing partitions."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from streams.consumer_lag import LagExporter, partition_lags
from streams.offline.traffic import TrafficGenerator
from tests.harness import WorkerProcess, event_record, free_port, produce, service_env

T = "mot.touchpoints"


def test_lag_is_end_offset_minus_committed_and_everything_when_nothing_is_committed() -> None:
    owned = [(T, 0), (T, 1), (T, 2), (T, 3)]
    lags = partition_lags(
        owned,
        committed={(T, 0): 90, (T, 1): 40, (T, 2): None, (T, 3): 7},
        end_offsets={(T, 0): 100, (T, 1): 40, (T, 2): 25},  # (T, 3): end unknown
        beginning_offsets={(T, 2): 5},
    )
    assert lags == {(T, 0): 10, (T, 1): 0, (T, 2): 20}


def test_the_gauge_keeps_only_the_partitions_owned_now() -> None:
    registry = CollectorRegistry()
    gauge = Gauge("lag_messages", "lag", ["topic", "partition"], registry=registry)
    exporter = LagExporter(gauge)
    exporter.publish({(T, 0): 3, (T, 1): 0, (T, 2): 12})
    exporter.publish({(T, 1): 4, (T, 5): 1})  # a rebalance: 0 and 2 went to another worker
    text = generate_latest(registry).decode()
    samples = sorted(line for line in text.splitlines() if line.startswith("lag_messages{"))
    assert samples == ['lag_messages{partition="1",topic="mot.touchpoints"} 4.0',
                       'lag_messages{partition="5",topic="mot.touchpoints"} 1.0']


def lag_series(worker: WorkerProcess) -> dict[int, float]:
    """The worker's lag series for the input topic, by partition."""
    out = {}
    for m in re.finditer(r'^mot_consumer_lag_messages\{partition="(\d+)",topic="([^"]+)"\} (\S+)$',
                         worker.metrics(), re.MULTILINE):
        assert not m.group(2).endswith("-changelog"), "changelogs are never committed"
        if m.group(2) == worker.env["MOT_TOPIC_EVENTS"]:
            out[int(m.group(1))] = float(m.group(3))
    return out


async def wait_for(condition: Callable[[], Any], timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise AssertionError("timed out")


@pytest.mark.kafka
async def test_workers_report_the_lag_of_the_partitions_they_own(kafka: str,
                                                                 tmp_path: Path) -> None:
    """One worker owns both partitions; when a second joins the group, each reports only
    its own, so the sum over workers stays the group's lag."""
    env_a = service_env(kafka, tmp_path / "a", MOT_CONSUMER_LAG_INTERVAL_S="0.5")
    env_b = dict(env_a, MOT_DATA_DIR=str(tmp_path / "b"), MOT_WEB_PORT=str(free_port()))
    a = WorkerProcess(env_a, tmp_path / "a.log")
    b = WorkerProcess(env_b, tmp_path / "b.log")
    try:
        a.start()
        gen = TrafficGenerator(seed=3, customers=40)
        n = await produce(kafka, env_a["MOT_TOPIC_EVENTS"],
                          [event_record(gen.next_event(time.time())) for _ in range(200)])
        assert n == 200
        # caught up: both partitions reported, nothing left to commit
        await wait_for(lambda: (s := lag_series(a)) and set(s) == {0, 1}
                       and all(v == 0 for v in s.values()))

        b.start()
        split = await wait_for(lambda: (sa := lag_series(a)) and (sb := lag_series(b))
                               and len(sa) == len(sb) == 1 and (sa, sb), timeout=120)
        sa, sb = split
        assert set(sa) | set(sb) == {0, 1}, "each partition reported by exactly one worker"
    finally:
        b.stop()
        a.stop()
