"""Touchpoint andon on the real local Kafka broker, with two workers.

A touchpoint whose failure rate jumps goes amber, then red, then back to green once it
recovers, each transition sent once; another that breaks for good stays red. Both
workers answer ``GET /touchpoints`` with every touchpoint, whichever worker runs it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from aiokafka.partitioner import murmur2

from tests.harness import (
    WorkerProcess,
    consume,
    event_record,
    free_port,
    metric_value,
    produce,
    service_env,
)

pytestmark = pytest.mark.kafka
SCHEMA = json.loads((Path(__file__).parent.parent / "schemas"
                     / "touchpoint-status-alert.v1.schema.json").read_text())
ANDON = dict(MOT_TOUCHPOINT_WINDOW_S=60, MOT_TOUCHPOINT_BUCKET_S=10,
             MOT_TOUCHPOINT_BASELINE_ALPHA=0.05, MOT_TOUCHPOINT_MIN_WINDOW_EVENTS=20,
             MOT_TOUCHPOINT_MIN_BASELINE_EVENTS=100)


def one_per_partition(prefix: str, partitions: int = 2) -> list[str]:
    """Touchpoint names that land on different partitions (so on different workers)."""
    found: dict[int, str] = {}
    i = 0
    while len(found) < partitions:
        name = f"{prefix}-{i}"
        found.setdefault((murmur2(name.encode()) & 0x7FFFFFFF) % partitions, name)
        i += 1
    return [found[p] for p in range(partitions)]


def traffic(jumpy: str, broken: str) -> list[dict[str, Any]]:
    """10 moments a second per touchpoint in event time, from one customer (in order).
    ``jumpy``: 5 % failing, then 40 % for 2 minutes, then 5 % again.
    ``broken``: 5 % failing, then 50 % to the end."""
    start = time.time() - 3600
    events = []
    acc = {jumpy: 0.0, broken: 0.0}
    for s in range(620):
        rates = {jumpy: 0.40 if 300 <= s < 420 else 0.05, broken: 0.50 if s >= 400 else 0.05}
        for k in range(10):
            for tp, rate in rates.items():
                acc[tp] += rate
                failed = acc[tp] >= 1.0
                if failed:
                    acc[tp] -= 1.0
                events.append({
                    "event_id": f"{tp}-{s}-{k}", "customer_id": "andon-load",
                    "occurred_at": datetime.fromtimestamp(start + s + k / 10, UTC).isoformat(),
                    "touchpoint": tp, "outcome": "failure" if failed else "success"})
    return events


async def test_andon_transitions_once_each_and_every_worker_serves_every_touchpoint(
    kafka: str, tmp_path: Path
) -> None:
    env_a = service_env(kafka, tmp_path / "a", **ANDON)
    env_b = {**env_a, "MOT_DATA_DIR": str(tmp_path / "b"), "MOT_WEB_PORT": str(free_port())}
    a = WorkerProcess(env_a, tmp_path / "a.log").start()
    b = WorkerProcess(env_b, tmp_path / "b.log")
    try:
        b.start()
        a.wait_healthy(90)  # after the rebalance that b's arrival caused
        jumpy, broken = one_per_partition("web.flaky")
        await produce(kafka, env_a["MOT_TOPIC_EVENTS"],
                      [event_record(e) for e in traffic(jumpy, broken)])
        records = await consume(kafka, env_a["MOT_TOPIC_ALERTS_TOUCHPOINT_STATUS"],
                                expect=6, timeout=120, idle=5)
        alerts = [r.json() for r in records]
        for alert in alerts:
            jsonschema.validate(alert, SCHEMA)
        assert len({x["alert_id"] for x in alerts}) == len(alerts)  # none sent twice
        by_tp = {tp: sorted((x for x in alerts if x["touchpoint"] == tp),
                            key=lambda x: x["transition"]) for tp in (jumpy, broken)}
        path = [x["status"] for x in by_tp[jumpy]]
        # Up: the rate climbs through amber (≥ 2 × 5 %) to red (≥ 4 ×) one moment at a time.
        # Down: red holds to 0.8 × 4 × 5 % = 16 %; with one 40 % bucket (10 s) left in the
        # 60 s window the rate is 11–12 %, amber; with none, 5 % < 0.8 × 2 × 5 %: green.
        # Whatever the phase of the buckets: exactly these four, and two for the broken one.
        assert path == ["amber", "red", "amber", "green"], path
        assert [x["transition"] for x in by_tp[jumpy]] == list(range(1, len(path) + 1))
        assert all(x["previous_status"] != x["status"] for x in alerts)
        red = by_tp[jumpy][1]
        assert red["window"]["failure_rate"] >= 4 * red["baseline"]["failure_rate"]
        assert 0.03 <= red["baseline"]["failure_rate"] <= 0.07
        assert [x["status"] for x in by_tp[broken]] == ["amber", "red"]
        assert len(alerts) == 6

        # the gauge: each worker exports the touchpoints it runs
        def gauge(w: WorkerProcess, tp: str) -> float | None:
            text = w.metrics()
            label = f'touchpoint="{tp}"'
            return metric_value(text, "mot_touchpoint_status", label) \
                if f"mot_touchpoint_status{{{label}}}" in text else None

        owners = {tp: [w for w in (a, b) if gauge(w, tp) is not None] for tp in (jumpy, broken)}
        assert all(len(ws) == 1 for ws in owners.values()), owners
        assert owners[jumpy][0] is not owners[broken][0]  # one on each worker
        assert gauge(owners[jumpy][0], jumpy) == 0.0 and gauge(owners[broken][0], broken) == 2.0

        for w in (a, b):
            status, body = w.get("/touchpoints")
            assert status == 200
            page = orjson.loads(body)
            assert page["workers"] == 2 and page["complete"] is True
            assert page["touchpoints"][jumpy]["status"] == "green"
            assert page["touchpoints"][jumpy]["transitions"] == len(path)
            assert page["touchpoints"][broken]["status"] == "red"
    finally:
        b.stop()
        a.stop()
