"""Hot reload on the real local Kafka broker: a rules version that lowers the failed
threshold is published mid-stream; alerts of events before its ``effective_from`` carry the
old version, those after carry the new one and include the moments only it calls failed.
A worker killed (SIGKILL) and restarted across the change re-sends nothing with another id
or version, and an invalid document written raw onto the rules topic leaves the running
worker's rules as they were."""

from __future__ import annotations

import asyncio
import math
import signal
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.domain.timestamps import iso
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
TOKEN = "rules-test-token"
CUSTOMERS = [f"rc-{i}" for i in range(4)]
MILD = {"sentiment": -0.15}  # q = -0.15: failed under -0.1, not under the default -0.2
BAD = {"csat": 1}  # q = -1: failed under both


def events(phase: str, t0: float) -> list[dict[str, Any]]:
    out = []
    for n, cid in enumerate(CUSTOMERS):
        for i, signal_ in enumerate((MILD, BAD, MILD)):
            out.append({"event_id": f"{cid}-{phase}{i}", "customer_id": cid,
                        "occurred_at": iso(t0 + n + i * 0.25), "touchpoint": "checkout.payment",
                        **signal_})
    return out


def get_json(w: WorkerProcess, path: str) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(w.base_url + path, headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, orjson.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def wait_for(check: Any, timeout: float, what: str, w: WorkerProcess) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} within {timeout}s:\n{w.log_tail()}")


def alerts(env: dict[str, str], expect: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    records = asyncio.run(consume(env["MOT_KAFKA_BOOTSTRAP_SERVERS"],
                                  env["MOT_TOPIC_ALERTS_FAILED_MOMENT"], expect=expect,
                                  timeout=timeout))
    return [r.json() for r in records]


def test_a_published_version_applies_from_its_effective_from_and_survives_a_kill(
        kafka: str, tmp_path: Path) -> None:
    env = service_env(kafka, tmp_path / "data", MOT_WEB_TOKEN=TOKEN,
                      MOT_RULES_MIN_LEAD_S="5", MOT_COMMIT_INTERVAL_S="600",
                      MOT_STANDBY_REPLICAS="0")
    bootstrap = env["MOT_KAFKA_BOOTSTRAP_SERVERS"]
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        # an invalid document is refused at publish, naming the field, and nothing is sent
        bad = tmp_path / "bad.yaml"
        bad.write_text("version: broken\nfailed_threshold: 3\n")
        done = mot(env, "rules", "publish", str(bad))
        assert done.returncode == 1
        assert b"rules.failed_threshold: must be a number within [-1, 1]" in done.stderr

        status, body = wait_for(lambda: (lambda r: r if r[1] and r[1]["loaded"] else None)(
            get_json(worker, "/rules")), 60, "the rules topic read", worker)
        assert (status, body["active"]) == (200, "env")
        assert worker.get("/rules")[0] == 401  # behind the data pages' token

        before = time.time() - 600
        asyncio.run(produce(bootstrap, env["MOT_TOPIC_EVENTS"],
                            [event_record(e) for e in events("a", before)]))
        first = alerts(env, expect=len(CUSTOMERS))
        assert {(a["event_id"], a["rules_version"]) for a in first} == {
            (f"{c}-a1", "env") for c in CUSTOMERS}

        effective = float(math.ceil(time.time() + 15))
        rules = tmp_path / "lower.yaml"
        rules.write_text(f"version: lower-threshold\neffective_from: {iso(effective)}\n"
                         "failed_threshold: -0.1\n")
        done = mot(env, "rules", "publish", str(rules))
        assert done.returncode == 0, done.stderr
        wait_for(lambda: any(v["version"] == "lower-threshold"
                             for v in (get_json(worker, "/rules")[1] or {}).get("versions", ())),
                 30, "the worker learnt the new version", worker)
        asyncio.run(produce(bootstrap, env["MOT_TOPIC_EVENTS"],
                            [event_record(e) for e in events("b", effective + 1)]))
        second = alerts(env, expect=len(CUSTOMERS) * 4)
        versions = {a["event_id"]: a["rules_version"] for a in second}
        assert {e: v for e, v in versions.items() if "-a" in e} == {
            f"{c}-a1": "env" for c in CUSTOMERS}
        assert {e: v for e, v in versions.items() if "-b" in e} == {
            f"{c}-b{i}": "lower-threshold" for c in CUSTOMERS for i in range(3)}, \
            "the newly failing (mild) moments after effective_from are alerted, as new"
        assert {a["reason"]["threshold"] for a in second if "-b" in a["event_id"]} == {-0.1}

        # killed across the change (no offset committed: it reads both phases again)
        worker.stop(signal.SIGKILL)
        worker = WorkerProcess(env, tmp_path / "worker-2.log").start()
        wait_for(lambda: (get_json(worker, "/rules")[1] or {}).get("loaded"), 60,
                 "the rules topic read again", worker)
        everything = alerts(env, expect=len(second) + len(CUSTOMERS) * 4, timeout=90)
        by_id: dict[str, set[bytes]] = {}
        for a in everything:
            by_id.setdefault(a["alert_id"], set()).add(
                # detected_at is the time of sending; a moment older than the customer's
                # last MOT_RECENT_MOMENTS is re-sent without its context (docs/delivery.md)
                orjson.dumps({k: v for k, v in a.items()
                              if k not in ("detected_at", "recent_moments")},
                             option=orjson.OPT_SORT_KEYS))
        assert len(everything) > len(second), "nothing was read again after the kill"
        differing = {i: [orjson.loads(b) for b in bodies] for i, bodies in by_id.items()
                     if len(bodies) > 1}
        assert differing == {}, "re-sent with other content or version: " + "; ".join(
            f"{i}: " + ", ".join(f"{k}={[b.get(k) for b in bodies]}" for k in bodies[0]
                                 if len({orjson.dumps(b.get(k)) for b in bodies}) > 1)
            for i, bodies in list(differing.items())[:3])
        assert {a["alert_id"] for a in everything} == {a["alert_id"] for a in second}

        # an invalid document written raw onto the topic: ignored, counted, rules kept
        asyncio.run(produce(bootstrap, env["MOT_TOPIC_RULES"], [
            (b"raw-bad", b"version: raw-bad\nfailed_threshold: 9\n"),
            (b"garbage", b"\xff not a document")]))
        wait_for(lambda: metric_value(worker.metrics(), "mot_rules_refused_total",
                                      'reason="invalid"') >= 2, 30,
                 "the invalid records counted", worker)
        status, body = get_json(worker, "/rules")
        assert body["active"] == "lower-threshold"
        assert [v["version"] for v in body["versions"]] == ["env", "lower-threshold"]
        asyncio.run(produce(bootstrap, env["MOT_TOPIC_EVENTS"],
                            [event_record(e) for e in events("c", effective + 60)]))
        third = [a for a in alerts(env, expect=len(everything) + len(CUSTOMERS) * 3)
                 if "-c" in a["event_id"]]
        assert {(a["event_id"], a["rules_version"]) for a in third} == {
            (f"{c}-c{i}", "lower-threshold") for c in CUSTOMERS for i in range(3)}
        assert "ignored, rules kept" in worker.log_tail(400)

        # the same change backtested on the topic's history: the mild moments from
        # effective_from on are the failed-moment alerts only the new rules raise
        done = mot(env, "backtest", "--from-topic", "--rules", str(rules), "--json",
                   "--workers", "1")
        assert done.returncode == 0, done.stderr
        diff = orjson.loads(done.stdout)
        only_new = {r["kind"]: r["only_new"] for r in diff["by_kind"]}
        assert only_new.get("failed-moment") == len(CUSTOMERS) * 2 * 2
        assert diff["counts"]["only_old"] == 0
    finally:
        worker.stop()
