"""Worker faults against the real broker: kill -9, a worker lost from a group of two,
and a graceful stop, each compared with the same events processed without faults.

Events are produced at a steady rate while the fault happens, as a live system
would keep producing; the figures go to the terminal.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from tests.faults.scenario import (
    assert_delivered,
    check_served,
    consumed,
    converge,
    fault_env,
    fault_free,
    make_events,
    owned_partitions,
    produce_paced,
    record,
    report,
    wait_until,
)
from tests.harness import WorkerProcess, free_port, metric_value

pytestmark = [pytest.mark.kafka, pytest.mark.faults]


def restarted(env: dict[str, str]) -> dict[str, str]:
    """The same worker (app id, topics, data dir) on a fresh web port."""
    return {**env, "MOT_WEB_PORT": str(free_port())}


async def test_kill_9_mid_stream_then_restart_loses_and_double_counts_nothing(
    kafka: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two kills: one while the worker keeps up with live traffic, one while it
    catches up on the backlog that built up meanwhile (large batches in flight)."""
    events = make_events(4000, customers=40, seed=1)
    expected = fault_free(events)
    env = fault_env(kafka, tmp_path / "data")
    workers = [WorkerProcess(env, tmp_path / "worker.log")]
    try:
        await asyncio.to_thread(workers[0].start)
        producing = asyncio.create_task(produce_paced(
            kafka, env["MOT_TOPIC_EVENTS"], [record(e) for e in events], rate=500))
        kills = []
        for at in (1500, 1200):
            await wait_until(lambda at=at: consumed(workers[-1]) >= at, 90,
                             f"{at} events consumed")
            kills.append(int(consumed(workers[-1])))
            workers[-1].stop(sig=signal.SIGKILL)
            workers.append(WorkerProcess(restarted(env), tmp_path / "worker.log"))
            await asyncio.to_thread(workers[-1].start)
        await asyncio.wait_for(producing, 120)
        figures = await converge("kill -9 twice + restart", kafka, env, expected, len(events))
        figures.notes.update(
            consumed_at_kills="/".join(map(str, kills)),
            reprocessed_as_duplicate=int(
                metric_value(workers[-1].metrics(), "mot_events_duplicate_total")))
        served_wrong = await check_served(figures, expected, workers[-1])
        report(capsys, figures.row())
        assert_delivered(figures, andon=False)
        assert not served_wrong, served_wrong[:5]
        assert workers[-1].get("/health")[0] == 200
    finally:
        for w in workers:
            w.stop()


async def test_a_killed_worker_s_partitions_move_to_the_other_and_it_rejoins(
    kafka: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = make_events(3600, customers=40, seed=2)
    first, second = events[:2400], events[2400:]
    env = fault_env(kafka, tmp_path / "a")
    env_b = {**env, "MOT_DATA_DIR": str(tmp_path / "b"), "MOT_WEB_PORT": str(free_port())}
    a = WorkerProcess(env, tmp_path / "a.log")
    b = WorkerProcess(env_b, tmp_path / "b.log")
    workers = [a, b]
    try:
        await asyncio.gather(asyncio.to_thread(a.start), asyncio.to_thread(b.start))
        # Both members are in the group, one input partition each, before traffic starts.
        topic = env["MOT_TOPIC_EVENTS"]
        await wait_until(lambda: len(owned_partitions(a, topic)) == 1
                         and owned_partitions(a, topic) | owned_partitions(b, topic) == {0, 1},
                         90, "one input partition per worker")
        producing = asyncio.create_task(produce_paced(
            kafka, env["MOT_TOPIC_EVENTS"], [record(e) for e in first], rate=600))
        await wait_until(lambda: consumed(a) >= 400 and consumed(b) >= 400, 90,
                         "both workers consuming")
        a.stop(sig=signal.SIGKILL)
        b_before = consumed(b)
        await asyncio.wait_for(producing, 120)
        expected = fault_free(first)
        figures = await converge("2 workers, one kill -9", kafka, env, expected, len(first))
        figures.notes.update(b_consumed_before=int(b_before), b_consumed_after=int(consumed(b)))
        served_wrong = await check_served(figures, expected, b)
        report(capsys, figures.row())
        assert_delivered(figures, andon=False)
        assert not served_wrong, served_wrong[:5]
        await wait_until(lambda: owned_partitions(b, topic) == {0, 1}, 30,
                         "the survivor owning every partition")

        # The killed worker comes back with its old (now stale) local state.
        a2 = WorkerProcess(restarted(env), tmp_path / "a.log")
        workers.append(a2)
        await asyncio.to_thread(a2.start, 120)
        await asyncio.to_thread(b.wait_healthy, 120)
        await asyncio.wait_for(produce_paced(
            kafka, env["MOT_TOPIC_EVENTS"], [record(e) for e in second], rate=600), 120)
        expected = fault_free(events)
        figures = await converge("... then it rejoins", kafka, env, expected, len(events))
        figures.notes.update(rejoined_consumed=int(consumed(a2)))
        # either worker answers for every customer (routed to the owner)
        served_wrong = await check_served(figures, expected, a2, b)
        report(capsys, figures.row())
        assert_delivered(figures, andon=False)
        assert not served_wrong, served_wrong[:5]
        assert consumed(a2) > 0, "the rejoined worker takes a share of the partitions"
        assert a2.get("/health")[0] == 200 and b.get("/health")[0] == 200
    finally:
        for w in workers:
            w.stop()


async def test_sigterm_commits_and_flushes_so_a_restart_re_emits_nothing(
    kafka: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = make_events(2400, customers=40, seed=3)
    expected = fault_free(events)
    env = fault_env(kafka, tmp_path / "data")
    workers = [WorkerProcess(env, tmp_path / "worker.log")]
    try:
        await asyncio.to_thread(workers[0].start)
        producing = asyncio.create_task(produce_paced(
            kafka, env["MOT_TOPIC_EVENTS"], [record(e) for e in events], rate=600))
        await wait_until(lambda: consumed(workers[0]) >= 1000, 60, "1000 events consumed")
        code = await asyncio.to_thread(workers[0].stop, signal.SIGTERM, 60)
        workers.append(WorkerProcess(restarted(env), tmp_path / "worker.log"))
        await asyncio.to_thread(workers[1].start)
        await asyncio.wait_for(producing, 120)
        figures = await converge("SIGTERM + restart", kafka, env, expected, len(events))
        reprocessed = int(metric_value(workers[1].metrics(), "mot_events_duplicate_total"))
        figures.notes.update(exit_code=code, reprocessed_as_duplicate=reprocessed)
        served_wrong = await check_served(figures, expected, workers[1])
        report(capsys, figures.row())
        assert_delivered(figures)
        assert not served_wrong, served_wrong[:5]
        assert figures.alerts_duplicated == 0, "a graceful stop flushes and commits"
        assert reprocessed == 0, "a graceful stop commits every processed offset"
    finally:
        for w in workers:
            w.stop()
