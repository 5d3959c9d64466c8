"""The broker goes away mid-stream and comes back: the worker recovers by itself.

This test runs its own broker (same port and data directory across the restart),
not the session's shared one.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streams.kafka.local_kafka import LocalKafka
from tests.faults.scenario import (
    assert_delivered,
    check_served,
    consumed,
    converge,
    fault_env,
    fault_free,
    make_events,
    produce_paced,
    record,
    report,
    wait_until,
)
from tests.harness import WorkerProcess, free_port, metric_value

pytestmark = [pytest.mark.kafka, pytest.mark.faults]


async def stall(worker: WorkerProcess, hold: float, timeout: float
                ) -> tuple[float | None, float | None]:
    """Wait until the worker's consumed count stays the same for ``hold`` seconds: that
    count and the seconds it took (both None if it kept moving for ``timeout``)."""
    began = time.monotonic()
    last = metric_value(worker.metrics(), "mot_events_consumed_total")
    since = began
    while time.monotonic() - began < timeout:
        await asyncio.sleep(0.5)
        now = metric_value(worker.metrics(), "mot_events_consumed_total")
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= hold:
            return last, round(since - began, 1)
    return None, None


async def test_a_broker_restart_mid_stream_loses_nothing_and_needs_no_worker_restart(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broker = LocalKafka(port=free_port(), data_dir=tmp_path / "kafka")
    bootstrap = await asyncio.to_thread(broker.start, 120)
    events = make_events(2400, customers=40, seed=4)
    env = fault_env(bootstrap, tmp_path / "data")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        await asyncio.to_thread(worker.start)
        producing = asyncio.create_task(produce_paced(
            bootstrap, env["MOT_TOPIC_EVENTS"], [record(e) for e in events], rate=400))
        await wait_until(lambda: consumed(worker) >= 800, 60, "800 events consumed")
        at_stop = consumed(worker)
        down = time.monotonic()
        await asyncio.to_thread(broker.stop)
        # The outage interrupts processing: once the records already fetched are done
        # (a bounded read-ahead), the worker, still serving its metrics, consumes nothing.
        stalled_at, stalled_after = await stall(worker, hold=3.0, timeout=60.0)
        await asyncio.sleep(max(0.0, 5.0 - (time.monotonic() - down)))
        await asyncio.to_thread(broker.start, 120)
        outage = time.monotonic() - down
        await asyncio.wait_for(producing, 180)
        expected = fault_free(events)
        figures = await converge("broker restart", bootstrap, env, expected,
                                 len(events), timeout=180)
        figures.notes.update(consumed_at_stop=int(at_stop), outage_s=round(outage, 1),
                             consumed_after_stop=None if stalled_at is None
                             else int(stalled_at - at_stop),
                             stalled_after_s=stalled_after)
        served_wrong = await check_served(figures, expected, worker)
        report(capsys, figures.row())
        assert worker.proc is not None and worker.proc.poll() is None, "the worker kept running"
        assert stalled_at is not None, "processing never stopped while the broker was down"
        assert consumed(worker) > stalled_at, "processing resumed without a worker restart"
        assert_delivered(figures)
        assert not served_wrong, served_wrong[:5]
        await asyncio.to_thread(worker.wait_healthy, 60)
    finally:
        worker.stop()
        broker.stop()
