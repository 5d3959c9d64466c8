"""Circles end to end on the real local Kafka broker: events in with a plain client,
lifecycle events, dead letters and metrics read back as a downstream user would."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agents.domain.circles import VICIOUS, VIRTUOUS, lifecycle_id
from tests.harness import (
    Record,
    WorkerProcess,
    consume,
    event_record,
    metric_value,
    produce,
    service_env,
)

pytestmark = pytest.mark.kafka
BASE = int(time.time()) // 3600 * 3600 - 20 * 86400  # event time: 20 days ago, on the hour


def ev(eid: str, cid: str, hours: float, **signals: Any) -> dict[str, Any]:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(BASE + hours * 3600))
    return {"event_id": eid, "customer_id": cid, "occurred_at": at,
            "touchpoint": "support.phone", "channel": "phone", **signals}


def vicious_story(cid: str) -> tuple[list[dict], list[dict], list[dict]]:
    """3 failures in 72 h, 2 more, then enough delights (weight 2) to bring the score back."""
    first = [ev(f"{cid}-f{i}", cid, 20 * i, csat=1) for i in range(3)]
    more = [ev(f"{cid}-f{i}", cid, 20 * i, csat=1) for i in range(3, 5)]
    good = [ev(f"{cid}-g{i}", cid, 100 + i, outcome="delight", weight=2) for i in range(34)]
    return first, more, good


@pytest.fixture
def worker(kafka: str, tmp_path: Path):
    w = WorkerProcess(service_env(kafka, tmp_path / "data"), tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


def of(records: list[Record], cid: str) -> list[dict[str, Any]]:
    return [r.json() for r in records if r.json()["customer_id"] == cid]


def lifecycle(alerts: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(a["kind"], a["alert_id"], a["lifecycle"]) for a in alerts]


async def wait_metric(w: WorkerProcess, name: str, labels: str, value: float,
                      timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while metric_value(w.metrics(), name, labels) != value:
        assert time.monotonic() < deadline, f"{name}{{{labels}}} never reached {value}"
        await asyncio.sleep(0.3)


async def test_vicious_circle_lifecycle_duplicates_and_shuffles(
    kafka: str, worker: WorkerProcess
) -> None:
    env = worker.env
    topic, circles = env["MOT_TOPIC_EVENTS"], env["MOT_TOPIC_ALERTS_CIRCLES"]
    first, more, good = vicious_story("alice")

    def ids(cid: str, *steps: str) -> list[tuple[str, str, str]]:
        return [(VICIOUS, lifecycle_id(VICIOUS, cid, 1, s), s) for s in steps]

    await produce(kafka, topic, map(event_record, first))
    got = of(await consume(kafka, circles, expect=1, timeout=60), "alice")
    assert lifecycle(got) == ids("alice", "opened"), "3 failures in 72 h: exactly one opened"
    assert got[0]["severity"] == "amber"
    assert got[0]["evidence"]["event_ids"] == [e["event_id"] for e in first]
    await wait_metric(worker, "mot_customers_in_vicious_circle", "", 1)

    await produce(kafka, topic, map(event_record, more))
    got = of(await consume(kafka, circles, expect=2, timeout=60), "alice")
    assert lifecycle(got) == ids("alice", "opened", "escalated"), "escalated, not opened again"
    assert got[1]["severity"] == "red" and got[1]["failures"] == 5

    await produce(kafka, topic, map(event_record, good))
    got = of(await consume(kafka, circles, expect=3, timeout=60), "alice")
    assert lifecycle(got) == ids("alice", "opened", "escalated", "resolved")
    resolved = got[2]
    assert resolved["severity"] == "green" and resolved["score"] >= 0
    assert resolved["event_id"] in {e["event_id"] for e in good}
    await wait_metric(worker, "mot_customers_in_vicious_circle", "", 0)

    # The same story for bob, shuffled: the failures among themselves (up to 80 h
    # out of order), then the delights among themselves. Same lifecycle, same ids.
    rnd = random.Random(7)
    b_fail, b_more, b_good = vicious_story("bob")
    failures = rnd.sample(b_fail + b_more, 5)
    assert [e["event_id"] for e in failures] != sorted(e["event_id"] for e in failures)
    await produce(kafka, topic, map(event_record, failures + rnd.sample(b_good, len(b_good))))
    # Carol: five delights and no failure, then a failure (virtuous circle).
    carol = [ev(f"carol-d{i}", "carol", i, outcome="delight") for i in range(5)]
    await produce(kafka, topic, map(event_record, [*carol, ev("carol-x", "carol", 6, csat=1)]))
    records = await consume(kafka, circles, expect=8, timeout=60)
    assert lifecycle(of(records, "bob")) == ids("bob", "opened", "escalated", "resolved")
    assert lifecycle(of(records, "carol")) == [
        (VIRTUOUS, lifecycle_id(VIRTUOUS, "carol", 1, s), s) for s in ("opened", "ended")]
    assert all(r.key == r.json()["customer_id"].encode() for r in records)

    # Replayed (same event ids): nothing changes; the lifecycle events the replayed events
    # caused are re-sent as they were (same alert ids), nothing new is sent.
    replay = first + more + good + b_fail + b_more + b_good
    await produce(kafka, topic, map(event_record, replay))
    await wait_metric(worker, "mot_events_duplicate_total", "", len(replay))
    # A moment 8 days older than alice's latest is past the lateness bound (7 days).
    await produce(kafka, topic, [event_record(ev("alice-late", "alice", 100 + 33 - 8 * 24,
                                                 csat=1))])
    dead = await consume(kafka, env["MOT_TOPIC_DEAD_LETTER"], expect=1, timeout=60)
    assert [r.headers["mot.reason"] for r in dead] == [b"too_late"]
    again = await consume(kafka, circles, expect=len(records) + 6, timeout=60, idle=3)

    def content(r: Record) -> dict:
        return {k: v for k, v in r.json().items() if k != "detected_at"}

    originals = {r.json()["alert_id"]: content(r) for r in records}
    assert len(again) == len(records) + 6  # alice's and bob's three transitions, again
    assert {r.json()["alert_id"] for r in again} == set(originals)
    assert all(content(r) == originals[r.json()["alert_id"]] for r in again)

    metrics = worker.metrics()
    transitions = Counter({(k, s): metric_value(
        metrics, "mot_circle_transitions_total", f'kind="{k}",lifecycle="{s}"')
        for k, s in [(VICIOUS, "opened"), (VICIOUS, "escalated"), (VICIOUS, "resolved"),
                     (VIRTUOUS, "opened"), (VIRTUOUS, "ended")]})
    assert transitions == Counter({(VICIOUS, "opened"): 2, (VICIOUS, "escalated"): 2,
                                   (VICIOUS, "resolved"): 2, (VIRTUOUS, "opened"): 1,
                                   (VIRTUOUS, "ended"): 1})
    assert metric_value(metrics, "mot_vicious_circle_duration_seconds_count") == 2
    assert metric_value(metrics, "mot_customers_in_vicious_circle") == 0
