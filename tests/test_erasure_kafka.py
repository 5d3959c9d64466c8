"""A customer's right to be forgotten, on the real local Kafka broker: a customer with an
open vicious circle and an open journey is erased (``mot forget``) while the traffic of
other customers flows, and everything a user of the service could look at says so.

The other customers are compared with the offline replay of the same input without the
erased customer: their alerts and scores are exactly what they would have been had the
erased customer never existed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from jsonschema import Draft202012Validator, FormatChecker

from agents.domain.customer_state import CustomerState, decode_state, in_vicious_circle
from schemas import schema_path
from tests.harness import (
    WorkerProcess,
    consume,
    event_record,
    metric_value,
    mot,
    produce,
    service_env,
)

pytestmark = pytest.mark.kafka
BASE = int(time.time()) // 3600 * 3600 - 2 * 86400
VICTIM = "erased-customer-7f3a"
OTHERS = [f"cust-{i:02d}" for i in range(16)]
HASH_KEY = b"a test key for the keyed hash, 32+ bytes long"
TABLES = ("customer-state", "journey-deadlines", "journey-due", "stream-clock",
          "touchpoint-status", "erasure-suppression")
RECEIPT = Draft202012Validator(json.loads(schema_path("erasure-receipt.v1").read_text()),
                               format_checker=FormatChecker())


def ev(eid: str, cid: str, minutes: float, **fields: Any) -> dict[str, Any]:
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(BASE + minutes * 60))
    return {"event_id": eid, "customer_id": cid, "occurred_at": at,
            "touchpoint": "support.phone", "channel": "phone", **fields}


def victim_events() -> list[dict[str, Any]]:
    """Three failures in one journey: a vicious circle opens; the journey stays open.
    The event ids do not contain the customer id (so a search for it means something)."""
    return [ev(f"ev-9a{i}", VICTIM, 10 * i, csat=1, journey_id="claim-1") for i in range(3)]


def other_events(phase: int) -> list[dict[str, Any]]:
    """Per customer, in event-time order: a mix of good, failed and abandoned moments."""
    out = []
    for n, cid in enumerate(OTHERS):
        for i in range(4):
            step = phase * 4 + i
            if n % 4 == 0:
                signal: dict[str, Any] = {"csat": 1}
            elif n % 4 == 1 and step == 6:
                signal = {"outcome": "abandoned"}
            else:
                signal = {"csat": (n + step) % 5 + 1}
            out.append(ev(f"{cid}-{step}", cid, 10 * step + n, journey_id=f"{cid}-j",
                          **signal))
    return out



def changelog(env: dict[str, str], table: str) -> str:
    return f"{env['MOT_APP_ID']}-{table}-changelog"


async def latest(kafka: str, topic: str) -> dict[bytes, bytes]:
    """Latest record value per raw key (b"" for a tombstone)."""
    out: dict[bytes, bytes] = {}
    for r in await consume(kafka, topic, timeout=10, idle=0):
        if r.key is not None:
            out[r.key] = r.value
    return out


async def scored(kafka: str, env: dict[str, str]) -> dict[str, CustomerState]:
    return {orjson.loads(k): decode_state(v)
            for k, v in (await latest(kafka, changelog(env, "customer-state"))).items() if v}


async def wait_until(check: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = await check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(1)


def get_json(w: WorkerProcess, path: str, retry_s: float = 60.0) -> tuple[int, Any]:
    deadline = time.monotonic() + retry_s
    while True:
        status, body = w.get(path)
        if status != 503 or time.monotonic() > deadline:
            return status, orjson.loads(body)
        time.sleep(0.5)


async def alerts_of_others(kafka: str, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The customer alerts (failed moments, circles, drop-offs) of everyone but the
    erased customer, by id. The andon's transitions are the touchpoint's, not a customer's."""
    out: dict[str, dict[str, Any]] = {}
    for var in ("MOT_TOPIC_ALERTS_FAILED_MOMENT", "MOT_TOPIC_ALERTS_CIRCLES",
                "MOT_TOPIC_ALERTS_DROP_OFF"):
        for r in await consume(kafka, env[var], expect=0, timeout=20, idle=2):
            a = r.json()
            if a["customer_id"] != VICTIM:
                out.setdefault(a["alert_id"], a)
    return out


def without_detected_at(a: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in a.items() if k != "detected_at"}


@pytest.fixture
def env(kafka: str, tmp_path: Path) -> dict[str, str]:
    key_file = tmp_path / "erasure.key"
    key_file.write_bytes(HASH_KEY + b"\n")
    # No timer-driven drop-offs: the offline replay has no wall clock to drive them.
    return service_env(kafka, tmp_path / "first", MOT_ERASURE_HASH_KEY_FILE=key_file,
                       MOT_JOURNEY_CHECK_INTERVAL_S=86400)


async def test_an_erased_customer_is_gone_and_nobody_else_changed(
    kafka: str, env: dict[str, str], tmp_path: Path
) -> None:
    chash = hmac.new(HASH_KEY, VICTIM.encode(), hashlib.sha256).hexdigest()
    first = WorkerProcess(env, tmp_path / "first.log").start()
    restored: WorkerProcess | None = None
    try:
        topic = env["MOT_TOPIC_EVENTS"]
        phase1, phase2 = other_events(0), other_events(1)
        await produce(kafka, topic, map(event_record, victim_events() + phase1))

        async def victim_scored() -> bool:
            st = (await scored(kafka, env)).get(VICTIM)
            return st is not None and st.moments == 3
        await wait_until(victim_scored, "the customer's three moments scored")
        status, body = get_json(first, f"/customers/{VICTIM}")
        assert status == 200 and [c["kind"] for c in body["open_circles"]] == ["vicious-circle"]
        deadlines = await latest(kafka, changelog(env, "journey-deadlines"))
        assert deadlines.get(orjson.dumps(VICTIM)), "the customer's journey is open"

        # the others' traffic flows while the request is sent and handled
        async def trickle() -> None:
            for i in range(0, len(phase2), 4):
                await produce(kafka, topic, map(event_record, phase2[i:i + 4]))
                await asyncio.sleep(0.1)
        traffic = asyncio.create_task(trickle())
        sent = await asyncio.to_thread(mot, env, "forget", VICTIM, "--requested-by", "dpo")
        assert sent.returncode == 0, sent.stderr
        request_id, named = sent.stdout.decode().strip().split("\t")
        assert named == VICTIM
        await traffic

        receipts = await consume(kafka, env["MOT_TOPIC_ERASURE_RECEIPTS"], expect=1,
                                 timeout=90)
        assert len(receipts) == 1, first.log_tail()
        receipt = receipts[0].json()
        RECEIPT.validate(receipt)
        assert receipts[0].key == chash.encode()
        assert receipt["request_id"] == request_id and receipt["customer_hash"] == chash
        assert VICTIM.encode() not in receipts[0].value
        assert {r["store"]: r["entries"] for r in receipt["removed"]} == {
            "customer-state": 1, "journey-deadlines": 1, "journey-due": 1, "open-circles": 1}
        assert receipt["retained"] == [] and "touchpoint-status" in receipt["checked"]
        assert receipt["worker"] == first.base_url and receipt["repeat"] is False

        assert get_json(first, f"/customers/{VICTIM}")[0] == 404

        # every changelog: the customer's key ends in a tombstone, no value mentions them
        for table in TABLES:
            records = await latest(kafka, changelog(env, table))
            assert records.get(orjson.dumps(VICTIM), b"") == b"", table
            assert not [k for k, v in records.items() if v and VICTIM.encode() in k + v], table
        for table in ("customer-state", "journey-deadlines"):
            had = [r for r in await consume(kafka, changelog(env, table), timeout=10, idle=0)
                   if r.key == orjson.dumps(VICTIM)]
            assert len(had) >= 2 and had[-1].value == b"", table

        others = len(phase1) + len(phase2)

        async def others_scored() -> dict[str, CustomerState] | None:
            table = await scored(kafka, env)
            done = sum(st.moments for c, st in table.items() if c != VICTIM) == others
            return table if done else None
        table = await wait_until(others_scored, "the other customers' moments scored")
        assert VICTIM not in table
        # the open-circle gauge counts the others' open circles only
        assert metric_value(first.metrics(), "mot_customers_in_vicious_circle") == \
            sum(in_vicious_circle(st) for st in table.values())
        first.stop()
        # the erasing worker's RocksDB files were compacted over the key: no copy left
        files = [f for f in (tmp_path / "first").rglob("*") if f.is_file()]
        assert any(f.suffix == ".sst" for f in files)
        assert [f for f in files if VICTIM.encode() in f.read_bytes()] == []

        # a worker on an empty disk restores the tables: nothing of the customer comes back
        restored = WorkerProcess({**env, "MOT_DATA_DIR": str(tmp_path / "restored")},
                                 tmp_path / "restored.log").start()
        assert get_json(restored, f"/customers/{VICTIM}")[0] == 404
        for cid in OTHERS:
            status, body = get_json(restored, f"/customers/{cid}")
            assert status == 200 and body["score"] == pytest.approx(table[cid].score)
        # a later event of the customer: dead-lettered as erased, nothing of it copied
        later = ev("ev-9b0", VICTIM, 200, outcome="delight", journey_id="claim-2")
        await produce(kafka, topic, [event_record(later)])
        dead = await consume(kafka, env["MOT_TOPIC_DEAD_LETTER"], expect=1, timeout=60)
        assert [(d.headers["mot.reason"], d.value, d.key) for d in dead] == [
            (b"erased", b"", chash.encode())], restored.log_tail()
        assert not any(VICTIM.encode() in v for v in dead[0].headers.values())
        assert get_json(restored, f"/customers/{VICTIM}")[0] == 404
        # the same request again (a producer retrying): the same receipt id
        again = {"schema": "mot.erasure-request/v1", "request_id": request_id,
                 "customer_id": VICTIM}
        await produce(kafka, env["MOT_TOPIC_ERASURE_REQUESTS"],
                      [(VICTIM.encode(), orjson.dumps(again))])
        receipts = await consume(kafka, env["MOT_TOPIC_ERASURE_RECEIPTS"], expect=2,
                                 timeout=60)
        assert len(receipts) == 2
        repeated = receipts[1].json()
        assert repeated["receipt_id"] == receipt["receipt_id"] and repeated["repeat"] is True
        assert repeated["removed"] == receipt["removed"]
        assert repeated["erased_at"] == receipt["erased_at"]
        # a request under another key (on another partition: b"never-seen" is on 0,
        # "stranger-1" on 1) is routed to the customer's partition; a bad one is
        # dead-lettered with its reason
        stranger = {"schema": "mot.erasure-request/v1", "request_id": "req-unkeyed",
                    "customer_id": "stranger-1"}
        await produce(kafka, env["MOT_TOPIC_ERASURE_REQUESTS"],
                      [(b"never-seen", orjson.dumps(stranger)),
                       (b"x", b'{"schema": "mot.erasure-request/v1", "customer_id": "x"}')])
        receipts = await consume(kafka, env["MOT_TOPIC_ERASURE_RECEIPTS"], expect=3,
                                 timeout=60)
        unkeyed = receipts[2].json()
        assert unkeyed["request_id"] == "req-unkeyed" and unkeyed["repeat"] is False
        assert all(r["entries"] == 0 for r in unkeyed["removed"])
        partition = DefaultPartitioner()
        assert unkeyed["partition"] == partition(b"stranger-1", [0, 1], [0, 1]) == 1 \
            != partition(b"never-seen", [0, 1], [0, 1])
        dead = await consume(kafka, env["MOT_TOPIC_DEAD_LETTER"], expect=2, timeout=60)
        # two records on a two-partition topic: read back in either order
        assert sorted(d.headers["mot.reason"] for d in dead) == [b"erased", b"missing_field"]
        assert [d.headers["mot.detail"] for d in dead
                if d.headers["mot.reason"] == b"missing_field"] == [b"request_id"]

        # nobody else changed: the offline replay of the input without the customer
        src = tmp_path / "others.jsonl"
        src.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in phase1 + phase2))
        replayed = await asyncio.to_thread(mot, env, "replay", str(src),
                                           "-o", str(tmp_path / "alerts.jsonl"),
                                           "--scores", str(tmp_path / "scores.jsonl"))
        assert replayed.returncode == 0, replayed.stderr
        offline = {a["alert_id"]: a for a in map(
            orjson.loads, (tmp_path / "alerts.jsonl").read_bytes().splitlines())}
        scores = {s["customer_id"]: s for s in map(
            orjson.loads, (tmp_path / "scores.jsonl").read_bytes().splitlines())}
        assert set(scores) == set(OTHERS) and len(offline) > 10
        for cid in OTHERS:
            assert table[cid].score == pytest.approx(scores[cid]["score"], rel=1e-12,
                                                         abs=1e-12), cid
            assert table[cid].moments == scores[cid]["moments"]
        streamed = await alerts_of_others(kafka, env)
        assert set(streamed) == set(offline)
        for alert_id, a in offline.items():
            assert without_detected_at(streamed[alert_id]) == without_detected_at(a)
        kinds = {a["kind"] for a in offline.values()}
        assert {"failed-moment", "vicious-circle", "drop-off"} <= kinds
    finally:
        first.stop()
        if restored is not None:
            restored.stop()
