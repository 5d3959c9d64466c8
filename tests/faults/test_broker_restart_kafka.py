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
        # The outage interrupts processing: once what was already fetched is done, the
        # worker (still serving its metrics) consumes nothing until the broker is back.
        await asyncio.sleep(3)
        stalled_from = metric_value(worker.metrics(), "mot_events_consumed_total")
        await asyncio.sleep(3)
        stalled_to = metric_value(worker.metrics(), "mot_events_consumed_total")
        await asyncio.to_thread(broker.start, 120)
        outage = time.monotonic() - down
        await asyncio.wait_for(producing, 180)
        expected = fault_free(events)
        figures = await converge("broker restart", bootstrap, env, expected,
                                 len(events), timeout=180)
        figures.notes.update(consumed_at_stop=int(at_stop), outage_s=round(outage, 1),
                             consumed_while_down=int(stalled_to - stalled_from))
        served_wrong = await check_served(figures, expected, worker)
        report(capsys, figures.row())
        assert worker.proc is not None and worker.proc.poll() is None, "the worker kept running"
        assert stalled_to == stalled_from, "records were processed with the broker down"
        assert consumed(worker) > stalled_to, "processing resumed without a worker restart"
        assert_delivered(figures)
        assert not served_wrong, served_wrong[:5]
        await asyncio.to_thread(worker.wait_healthy, 60)
    finally:
        worker.stop()
        broker.stop()
