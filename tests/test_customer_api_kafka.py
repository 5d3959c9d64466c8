"""``GET /customers/{id}`` with two workers on the real local Kafka broker: either worker
answers for every customer (the owner's table, routed), and the vicious-circle gauge
follows the partitions when one worker leaves."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.domain.circles import VICIOUS, circle_id
from agents.domain.customer_state import decode_state
from tests.harness import (
    WorkerProcess,
    consume,
    event_record,
    free_port,
    metric_value,
    produce,
)
from tests.harness import service_env as base_env

pytestmark = pytest.mark.kafka
BASE = int(time.time()) // 3600 * 3600 - 86400
CUSTOMERS = [f"cust-{i:02d}" for i in range(12)]
IN_CIRCLE = CUSTOMERS[::3]  # 4 customers with three failures in a row


def ev(eid: str, cid: str, minutes: int, **signals: Any) -> dict[str, Any]:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(BASE + minutes * 60))
    return {"event_id": eid, "customer_id": cid, "occurred_at": at, "touchpoint": "web.search",
            "channel": "web", "attributes": {"secret": "not for the web page"}, **signals}


def events() -> list[dict[str, Any]]:
    out = []
    for cid in CUSTOMERS:
        signals = [{"csat": 1}] * 3 if cid in IN_CIRCLE else [{"outcome": "success"},
                                                                 {"csat": 2}, {"csat": 5}]
        out += [ev(f"{cid}-{i}", cid, i, **s) for i, s in enumerate(signals)]
    return out


@pytest.fixture
def workers(kafka: str, tmp_path: Path):
    env = base_env(kafka, tmp_path / "a")
    started: list[WorkerProcess] = []
    try:
        for name in ("a", "b"):
            w = WorkerProcess({**env, "MOT_DATA_DIR": str(tmp_path / name),
                               "MOT_WEB_PORT": str(free_port())}, tmp_path / f"{name}.log")
            started.append(w)
            w.start()
        yield started
    finally:
        for w in started:
            w.stop()


def get_json(w: WorkerProcess, path: str, retry_s: float = 10.0) -> tuple[int, Any]:
    """GET a JSON page, retrying a 503 (Retry-After) as a client of the page would."""
    deadline = time.monotonic() + retry_s
    while True:
        status, body = w.get(path)
        if status != 503 or time.monotonic() > deadline:
            return status, orjson.loads(body)
        time.sleep(0.5)


async def wait_for(check, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.5)


async def test_either_worker_answers_for_every_customer(
    kafka: str, workers: list[WorkerProcess]
) -> None:
    a, b = workers
    env = a.env
    # both members of the group own a partition before any data arrives
    await wait_for(lambda: all(w.get("/health")[0] == 200 for w in workers))
    sent = events()
    await produce(kafka, env["MOT_TOPIC_EVENTS"], map(event_record, sent))
    changelog = f"{env['MOT_APP_ID']}-customer-state-changelog"

    deadline = time.monotonic() + 90
    while True:
        records = await consume(kafka, changelog, timeout=10, idle=0)
        latest = {}
        for r in records:
            latest[orjson.loads(r.key)] = (r.partition, decode_state(r.value))
        if all(c in latest and latest[c][1].moments == 3 for c in CUSTOMERS):
            break
        assert time.monotonic() < deadline, "events not all scored"
        await asyncio.sleep(1)
    assert {p for p, _ in latest.values()} == {0, 1}, "customers on both workers' partitions"

    # which worker owns which partition: each says so for one of its own customers
    partition_owner: dict[int, int] = {}
    for cid, (partition, _) in latest.items():
        served = {get_json(w, f"/customers/{cid}")[1]["served_by"] for w in workers}
        assert len(served) == 1
        partition_owner[partition] = [w.base_url for w in workers].index(served.pop())
    assert sorted(partition_owner.values()) == [0, 1], "each worker owns one partition"

    for cid in CUSTOMERS:
        state = latest[cid][1]
        answers = [get_json(w, f"/customers/{cid}") for w in workers]
        assert answers[0] == answers[1], f"{cid}: the two workers disagree"
        status, body = answers[0]
        assert status == 200
        owner = workers[partition_owner[latest[cid][0]]]
        assert body["served_by"] == owner.base_url, "answered by the partition's owner"
        assert body["customer_id"] == cid
        assert body["score"] == pytest.approx(state.score, abs=1e-6)
        assert body["moments"] == 3
        assert [m["event_id"] for m in body["recent_moments"]] == [
            f"{cid}-2", f"{cid}-1", f"{cid}-0"]
        assert set(body["recent_moments"][0]) == {"event_id", "occurred_at", "touchpoint",
                                                  "quality"}
        assert "secret" not in orjson.dumps(body).decode()
        if cid in IN_CIRCLE:
            (circle,) = body["open_circles"]
            assert circle["kind"] == VICIOUS and circle["severity"] == "amber"
            assert circle["circle_id"] == circle_id(VICIOUS, cid, 1)
            assert circle["failures"] == 3
        else:
            assert body["open_circles"] == []

    for w in workers:
        status, body = get_json(w, "/customers/nobody")
        assert status == 404 and body["error"] == "not_found"
        assert body["customer_id"] == "nobody"

    gauges = [metric_value(w.metrics(), "mot_customers_in_vicious_circle") for w in workers]
    for p, i in partition_owner.items():
        assert gauges[i] == sum(latest[c][0] == p for c in IN_CIRCLE)
    alerts = await consume(kafka, env["MOT_TOPIC_ALERTS_CIRCLES"], expect=len(IN_CIRCLE))
    assert sorted(r.json()["customer_id"] for r in alerts) == sorted(IN_CIRCLE)

    # b leaves: a takes over b's partition, its table and its open circles
    b.stop()
    await wait_for(lambda: metric_value(a.metrics(), "mot_customers_in_vicious_circle")
                   == len(IN_CIRCLE))
    await wait_for(lambda: a.get("/health")[0] == 200)
    for cid in CUSTOMERS:
        status, body = get_json(a, f"/customers/{cid}")
        assert status == 200 and body["score"] == pytest.approx(latest[cid][1].score)
