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
from tests.harness import WorkerProcess, free_port

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
        await asyncio.sleep(5)
        await asyncio.to_thread(broker.start, 120)
        outage = time.monotonic() - down
        await asyncio.wait_for(producing, 180)
        figures = await converge("broker restart", bootstrap, env, fault_free(events),
                                 len(events), timeout=180)
        figures.notes.update(consumed_at_stop=int(at_stop), outage_s=round(outage, 1))
        report(capsys, figures.row())
        assert worker.proc is not None and worker.proc.poll() is None, "the worker kept running"
        assert figures.alerts_lost == 0, figures.row()
        assert figures.processed == figures.sent, figures.row()
        assert not figures.score_mismatches, figures.score_mismatches[:5]
        assert figures.alerts_unexpected == 0 and not figures.alert_mismatches
        await asyncio.to_thread(worker.wait_healthy, 60)
    finally:
        worker.stop()
        broker.stop()
