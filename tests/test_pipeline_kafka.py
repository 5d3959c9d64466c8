"""The walking skeleton end to end on the real local Kafka broker.

Events go in with a plain Kafka client; alerts, dead letters and the table's
changelog are read back with a plain Kafka client.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest

from agents.domain.alert_ids import alert_id
from tests.harness import (
    WorkerProcess,
    consume,
    event_record,
    latest_by_key,
    metric_value,
    produce,
    service_env,
)

pytestmark = pytest.mark.kafka
HALF_LIFE = 30 * 86400


def ev(eid: str, cid: str, at: str, **signals: object) -> dict:
    return {"event_id": eid, "customer_id": cid, "occurred_at": at,
            "touchpoint": "checkout.payment", "channel": "web", **signals}


@pytest.fixture
def worker(kafka: str, tmp_path: Path):
    w = WorkerProcess(service_env(kafka, tmp_path / "data"), tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


async def test_failed_moments_alert_scores_match_and_bad_input_is_dead_lettered(
    kafka: str, worker: WorkerProcess
) -> None:
    env = worker.env
    good = [
        ev("a1", "alice", "2026-11-01T10:00:00Z", outcome="success"),
        ev("a2", "alice", "2026-11-01T10:05:00Z", csat=1, outcome="success"),
        ev("a3", "alice", "2026-11-02T10:05:00Z", outcome="delight"),
        ev("b1", "bob", "2026-11-01T09:00:00Z", duration_s=180, expected_duration_s=60),
        ev("b2", "bob", "2026-11-01T09:10:00Z", ces=6),
    ]
    bad: list[tuple[bytes | None, bytes]] = [
        (b"carol", b"this is not json"),
        (b"carol", b"\xff\xfe\xfd"),
        (b"carol", orjson.dumps(ev("c1", "carol", "2026-11-01T10:00:00Z", csat="five"))),
        (b"carol", orjson.dumps({"customer_id": "carol"})),
        (b"carol", orjson.dumps(ev("c2", "carol", "2026-11-01T10:00:00Z"))),
    ]
    await produce(kafka, env["MOT_TOPIC_EVENTS"],
                  [event_record(e) for e in good[:3]] + bad + [event_record(e) for e in good[3:]])
    # a retried event (same event_id) must not be counted twice
    await produce(kafka, env["MOT_TOPIC_EVENTS"], [event_record(good[1])])

    alerts = await consume(kafka, env["MOT_TOPIC_ALERTS_FAILED_MOMENT"], expect=2, timeout=120)
    by_id: dict[str, dict] = {}
    for r in alerts:
        by_id.setdefault(r.json()["alert_id"], r.json())
    assert set(by_id) == {alert_id("failed-moment", "alice", "a2"),
                          alert_id("failed-moment", "bob", "b1")}
    a2 = by_id[alert_id("failed-moment", "alice", "a2")]
    assert a2["customer_id"] == "alice" and a2["event_id"] == "a2"
    assert a2["reason"]["signal"] == "csat" and a2["reason"]["value"] == 1
    assert a2["severity"] == "red"
    decay = 2 ** (-300 / HALF_LIFE)
    assert a2["score_before"] == pytest.approx(0.5)
    assert a2["score_after"] == pytest.approx(0.5 * decay - 12.0, abs=1e-6)
    assert a2["evidence"]["event_ids"] == ["a2"]
    assert [m["event_id"] for m in a2["recent_moments"]] == ["a1"]
    b1 = by_id[alert_id("failed-moment", "bob", "b1")]
    assert b1["reason"]["signal"] == "duration_s" and b1["quality"] == -1.0
    assert all(r.key == r.json()["customer_id"].encode() for r in alerts)

    dead = await consume(kafka, env["MOT_TOPIC_DEAD_LETTER"], expect=len(bad), timeout=30)
    reasons = sorted(r.headers["mot.reason"].decode() for r in dead)
    assert reasons == sorted(["invalid_json", "invalid_json", "wrong_type", "missing_field",
                              "no_outcome_signal"])
    originals = {r.value for r in dead}
    assert originals == {v for _, v in bad}, "the original bytes are kept"
    for r in dead:
        assert r.headers["mot.source.topic"].decode() == env["MOT_TOPIC_EVENTS"]
        assert int(r.headers["mot.source.offset"]) >= 0
        assert r.headers["mot.detail"]

    state = await latest_by_key(kafka, f"{env['MOT_APP_ID']}-customer-state-changelog")
    alice = state["alice"]
    expected = (0.5 * decay - 12.0) * 2 ** (-86400 / HALF_LIFE) + 1.0
    assert alice.score == pytest.approx(expected, abs=1e-9)
    assert alice.moments == 3 and alice.failures == 1
    bob = state["bob"]
    assert bob.score == pytest.approx(-12.0 * 2 ** (-600 / HALF_LIFE) + (6 - 4) / 3, abs=1e-9)

    metrics = worker.metrics()
    assert metric_value(metrics, "mot_events_consumed_total") == len(good) + len(bad) + 1
    assert metric_value(metrics, "mot_events_valid_total") == len(good) + 1
    assert metric_value(metrics, "mot_events_duplicate_total") == 1
    assert metric_value(metrics, "mot_events_dead_lettered_total", 'reason="invalid_json"') == 2
    assert metric_value(metrics, "mot_failed_moments_total",
                        'channel="web",touchpoint="checkout.payment"') == 2
    assert "mot_processing_latency_seconds_bucket" in metrics
    assert "mot_running_score_bucket" in metrics
    assert worker.get("/table")[0] == 404, "table data must not be served over HTTP"


async def test_a_record_keyed_wrongly_is_rekeyed_and_scored_once(
    kafka: str, worker: WorkerProcess
) -> None:
    env = worker.env
    event = ev("d1", "dave", "2026-11-01T10:00:00Z", outcome="failure")
    await produce(kafka, env["MOT_TOPIC_EVENTS"], [(None, orjson.dumps(event))])
    alerts = await consume(kafka, env["MOT_TOPIC_ALERTS_FAILED_MOMENT"], expect=1, timeout=60)
    assert [r.json()["alert_id"] for r in alerts] == [alert_id("failed-moment", "dave", "d1")]
    assert metric_value(worker.metrics(), "mot_events_rekeyed_total") == 1


@pytest.mark.requires_tool("kcat")  # fails under CI=true if missing
async def test_kcat_publishing_reaches_alerts_and_dead_letters(
    kafka: str, worker: WorkerProcess
) -> None:
    """The README's kcat commands, as a third-party client would run them."""
    env = worker.env
    line = ('erin:{"event_id":"k-1","customer_id":"erin","occurred_at":"2026-11-23T09:00:00Z",'
            '"touchpoint":"support.phone","channel":"phone","csat":1}\n')
    subprocess.run(["kcat", "-P", "-b", kafka, "-t", env["MOT_TOPIC_EVENTS"], "-K:"],
                   input=line.encode(), check=True, timeout=30)
    subprocess.run(["kcat", "-P", "-b", kafka, "-t", env["MOT_TOPIC_EVENTS"], "-K:"],
                   input=b"erin:garbage\n", check=True, timeout=30)
    out = subprocess.run(
        ["kcat", "-C", "-b", kafka, "-t", env["MOT_TOPIC_ALERTS_FAILED_MOMENT"], "-o",
         "beginning", "-c", "1", "-e", "-q"], capture_output=True, timeout=60, check=True)
    for _ in range(20):
        if out.stdout.strip():
            break
        out = subprocess.run(
            ["kcat", "-C", "-b", kafka, "-t", env["MOT_TOPIC_ALERTS_FAILED_MOMENT"], "-o",
             "beginning", "-c", "1", "-e", "-q"], capture_output=True, timeout=60, check=True)
    alert = orjson.loads(out.stdout)
    assert alert["kind"] == "failed-moment" and alert["event_id"] == "k-1"
    dead = await consume(kafka, env["MOT_TOPIC_DEAD_LETTER"], expect=1, timeout=30)
    assert dead[0].value == b"garbage"
    assert dead[0].headers["mot.reason"] == b"invalid_json"
