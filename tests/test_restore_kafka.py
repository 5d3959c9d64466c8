"""Restore and standby on real Kafka: the tables a worker rebuilds from the changelogs hold
exactly what the changelogs hold, every key, byte for byte.

A worker scores a few thousand events and stops; a second one of the same app starts on an
empty disk and restores every table from its changelog topic, a fetch at a time; while it
does, ``/health`` answers ``recovering`` with the restore's figures and ``/metrics`` counts
the records. Then two workers with a standby copy each: each one's copy of the other's
partitions matches the changelog too. The local tables are read straight from RocksDB (the
workers stopped), the changelogs with a plain Kafka client.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import rocksdict

from streams.offline.traffic import TrafficGenerator
from tests.harness import (
    WorkerProcess,
    consume,
    free_port,
    metric_value,
    produce,
    service_env,
)

pytestmark = pytest.mark.kafka

TABLES = ("customer-state", "erasure-suppression", "journey-deadlines", "journey-due",
          "stream-clock", "touchpoint-status")
OFFSET_KEY = b"__faust\0offset__"  # where Faust keeps a partition's persisted offset

Tables = dict[tuple[str, int], dict[bytes, bytes]]


def traffic(n: int, customers: int) -> list[tuple[bytes, bytes]]:
    """``n`` valid events of ``customers`` customers, in the last minutes of event time."""
    gen = TrafficGenerator(seed=5, customers=customers)
    start = time.time() - n * 0.01 - 60
    return [(e["customer_id"].encode(), orjson.dumps(e)) for e in gen.events(start, 0.01, n)]


def local_tables(data_dir: Path) -> Tables:
    """Every key and value of every table partition a (stopped) worker holds on disk."""
    out: Tables = {}
    for db_path in sorted(data_dir.rglob("*.db")):
        table, _, partition = db_path.name[:-3].rpartition("-")
        if table not in TABLES:
            continue
        db = rocksdict.Rdict(str(db_path), options=rocksdict.Options(raw_mode=True),
                             access_type=rocksdict.AccessType.read_only())
        try:
            out[(table, int(partition))] = {k: v for k, v in db.items() if k != OFFSET_KEY}
        finally:
            db.close()
    return out


async def changelog_tables(bootstrap: str, app_id: str) -> Tables:
    """What the changelog topics say each table partition holds: the last value per key,
    a tombstone removing it."""
    out: Tables = {}
    for table in TABLES:
        for r in await consume(bootstrap, f"{app_id}-{table}-changelog", timeout=15, idle=0):
            part = out.setdefault((table, r.partition), {})
            if r.value:
                part[r.key] = r.value
            else:
                part.pop(r.key, None)
    return out


def non_empty(tables: Tables) -> Tables:
    return {k: v for k, v in tables.items() if v}


def wait_consumed(workers: list[WorkerProcess], n: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = sum(metric_value(w.metrics(), "mot_events_consumed_total") for w in workers)
        if done >= n:
            return
        time.sleep(0.5)
    raise TimeoutError(f"the workers did not consume {n} events in {timeout}s")


@contextmanager
def watching(worker: WorkerProcess) -> Iterator[list[tuple[int, dict[str, Any], str]]]:
    """Poll ``/health`` and ``/metrics`` of a starting worker until it serves: every answer
    that said ``recovering``, with the metrics read right after it."""
    seen: list[tuple[int, dict[str, Any], str]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                status, body = worker.get("/health")
            except OSError:
                time.sleep(0.02)
                continue
            health = orjson.loads(body)
            if health.get("status") == "recovering":
                seen.append((status, health, worker.metrics()))
            elif status == 200:
                return
            time.sleep(0.02)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(10)


async def test_a_worker_restoring_from_the_changelogs_holds_exactly_what_they_hold(
    kafka: str, tmp_path: Path
) -> None:
    n = 6000
    env = service_env(kafka, tmp_path / "first", MOT_STANDBY_REPLICAS=0)
    first = WorkerProcess(env, tmp_path / "first.log").start()
    try:
        events = traffic(n, 1500)
        await produce(kafka, env["MOT_TOPIC_EVENTS"], events)
        wait_consumed([first], n)
        time.sleep(2)  # the last batch's changelog records handed to the producer
    finally:
        first.stop()
    expected = await changelog_tables(kafka, env["MOT_APP_ID"])
    customers = {key for key, _ in events}
    assert len(expected[("customer-state", 0)]) + len(expected[("customer-state", 1)]) \
        == len(customers)
    assert non_empty(local_tables(tmp_path / "first")) == non_empty(expected)

    # Small fetches: the restore takes long enough to be watched, in batches all the same.
    env_again = {**env, "MOT_DATA_DIR": str(tmp_path / "again"), "MOT_MAX_POLL_RECORDS": "40"}
    again = WorkerProcess(env_again, tmp_path / "again.log")
    with watching(again) as seen:
        again.start(timeout=120)
    try:
        metrics = again.metrics()
        restored = metric_value(metrics, "mot_restore_records_total", 'kind="active"')
        assert metric_value(metrics, "mot_restore_records_remaining") == 0
        assert metric_value(metrics, "mot_restore_in_progress") == 0
        assert orjson.loads(again.get("/health")[1]) == {"status": "ok"}
    finally:
        again.stop()
    records = sum(len(v) for v in expected.values())
    assert restored >= records  # every key's last record at least (compaction may lag)
    assert seen, "/health never said recovering during the restore"
    for status, health, _ in seen:
        assert status == 503
        assert set(health) == {"status", "records_restored", "records_remaining",
                               "records_per_s", "eta_s"}
    # the remaining count is null until the changelogs' ends are known, then only goes down
    remaining = [h["records_remaining"] for _, h, _ in seen if h["records_remaining"] is not None]
    assert remaining and remaining[0] > 0
    assert remaining == sorted(remaining, reverse=True)
    assert any(h["eta_s"] is not None and h["records_restored"] > 0 for _, h, _ in seen)
    during = [metric_value(m, "mot_restore_in_progress") for _, _, m in seen]
    assert 1 in during
    assert any(metric_value(m, "mot_restore_records_remaining") > 0 for _, _, m in seen)
    assert non_empty(local_tables(tmp_path / "again")) == non_empty(expected)
    log = (tmp_path / "again.log").read_text(errors="replace")
    assert "restored " in log and "changelog records in" in log


async def test_standby_copies_hold_exactly_what_the_changelogs_hold(
    kafka: str, tmp_path: Path
) -> None:
    n = 4000
    env = service_env(kafka, tmp_path / "w1", MOT_STANDBY_REPLICAS=1)
    one = WorkerProcess(env, tmp_path / "w1.log").start()
    env_two = {**env, "MOT_DATA_DIR": str(tmp_path / "w2"),
               "MOT_WEB_PORT": str(free_port())}
    two = WorkerProcess(env_two, tmp_path / "w2.log")
    try:
        two.start()
        time.sleep(8)  # the group settles with both workers: one active partition each
        await produce(kafka, env["MOT_TOPIC_EVENTS"], traffic(n, 1000))
        wait_consumed([one, two], n)
        time.sleep(4)  # the last changelog records reach the standby copies
        standby = sum(metric_value(w.metrics(), "mot_restore_records_total", 'kind="standby"')
                      for w in (one, two))
    finally:
        two.stop()
        one.stop()
    expected = non_empty(await changelog_tables(kafka, env["MOT_APP_ID"]))
    assert standby > 0
    for data_dir in (tmp_path / "w1", tmp_path / "w2"):
        held = non_empty(local_tables(data_dir))
        # each worker holds both partitions: its own and the other's standby copy
        assert held == expected, data_dir.name
