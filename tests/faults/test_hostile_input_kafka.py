"""Hostile input on the real broker: a corpus of bad records, each followed by a good
event. Every bad record is dead-lettered with the expected reason or handled by a
documented rule (re-keyed, deduplicated, accepted), the good events all raise their
alerts, the worker stays healthy, and no payload reaches its log.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.domain.alert_ids import alert_id
from tests.faults.scenario import fault_env, read_topic, report
from tests.harness import WorkerProcess, metric_value, produce

pytestmark = [pytest.mark.kafka, pytest.mark.faults]

MARKER = "PAYLOAD-MARKER-7f3a"
REKEYED, DUPLICATE, ACCEPTED = "rule:rekeyed", "rule:duplicate", "rule:accepted"
NO_KEY = b"(no key)"  # in the corpus: send this record without a key


def iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def event(eid: str, cid: str, **fields: Any) -> dict[str, Any]:
    base = {"event_id": eid, "customer_id": cid, "occurred_at": iso(time.time() - 3600),
            "touchpoint": "checkout.payment", "csat": 1}
    return {**base, **fields}


def dumps(e: Any) -> bytes:
    return orjson.dumps(e)


def corpus() -> list[tuple[str, bytes | None, bytes | None, str]]:
    """``(kind, key, value, expected reason or rule)``; bad records carry MARKER."""
    m = MARKER
    old = iso(time.time() - 30 * 86400)
    deep = b'{"a":' * 2000 + b"1" + b"}" * 2000
    rows: list[tuple[str, bytes | None, Any, str]] = [
        ("not JSON", None, f"{m} this is not json".encode(), "invalid_json"),
        ("not JSON", None, f"{{{m}".encode(), "invalid_json"),
        ("not JSON", None, f"<event>{m}</event>".encode(), "invalid_json"),
        ("not JSON", None, dumps(event("x", "bad", note=m))[:-9], "invalid_json"),
        ("invalid UTF-8", None, b'{"event_id":"\xff\xfe' + m.encode() + b'"}', "invalid_json"),
        ("invalid UTF-8", None, b"\xc3\x28" + m.encode(), "invalid_json"),
        ("invalid UTF-8", None, dumps(event("x", "bad", team=m)).replace(
            b'"bad"', b'"\\ud800"'), "invalid_json"),
        ("wrong types", None, dumps(event("x", "bad", csat=m)), "wrong_type"),
        ("wrong types", None, dumps(event(42, "bad", team=m)), "wrong_type"),  # type: ignore[arg-type]
        ("wrong types", None, dumps(event("x", {"id": m})), "wrong_type"),  # type: ignore[arg-type]
        ("wrong types", None, dumps(event("x", "bad", csat=True, team=m)), "wrong_type"),
        ("wrong types", None, dumps(event("x", "bad", attributes=[m])), "wrong_type"),
        ("missing fields", None, dumps({"customer_id": "bad", "team": m}), "missing_field"),
        ("missing fields", None, dumps({k: v for k, v in event("x", "bad", team=m).items()
                                        if k != "occurred_at"}), "missing_field"),
        ("missing fields", None, dumps(event("x", "bad", duration_s=5, team=m)),
         "missing_field"),
        ("missing fields", None, dumps({k: v for k, v in event("x", "bad", team=m).items()
                                        if k != "csat"}), "no_outcome_signal"),
        ("unknown fields", None, dumps(event("x", "bad", csta=5, team=m)), "unknown_field"),
        ("nulls", None, dumps(event("x", "bad", csat=None, team=m)), "wrong_type"),
        ("nulls", None, dumps(event("x", None, team=m)), "wrong_type"),  # type: ignore[arg-type]
        ("nulls", None, b"null", "not_an_object"),
        ("nulls", None, None, "empty_record"),
        ("nulls", None, b"", "empty_record"),
        ("huge strings", None, dumps(event("x", "bad", touchpoint=m * 20)), "invalid_value"),
        ("huge strings", None, dumps(event("x", m * 1000)), "invalid_value"),
        ("huge strings", None, dumps(event("x", "bad", team=m * 20000)), "too_large"),
        ("deeply nested", None, b"[" * 3000 + b"]" * 3000, "invalid_json"),
        ("deeply nested", None, dumps(event("x", "bad", team=m))[:-1] + b',"attributes":'
         + deep + b"}", "invalid_json"),
        ("very large objects", None, dumps({f"{m}{i}": i for i in range(1500)}),
         "missing_field"),
        ("very large objects", None, dumps(event("x", "bad", **{f"{m}{i}": i
                                                              for i in range(2000)})),
         "unknown_field"),
        ("very large objects", None, dumps(event("x", "bad", attributes={
            f"{m}{i}": i for i in range(40)})), "invalid_value"),
        ("very large objects", None, dumps([m] * 10_000), "too_large"),
        ("numbers out of range", None, dumps(event("x", "bad", csat=6, team=m)),
         "out_of_range"),
        ("numbers out of range", None, dumps(event("x", "bad", nps=-1, team=m)),
         "out_of_range"),
        ("numbers out of range", None, dumps(event("x", "bad", sentiment=2.5, team=m)),
         "out_of_range"),
        ("numbers out of range", None, dumps(event("x", "bad", weight=1e308, team=m)),
         "out_of_range"),
        ("numbers out of range", None, dumps(event("x", "bad", team=m)).replace(
            b'"csat":1', b'"csat":100000000000000000000000000000'), "out_of_range"),
        ("numbers out of range", None, dumps(event("x", "bad", team=m)).replace(
            b'"csat":1', b'"csat":1e400'), "invalid_json"),
        ("numbers out of range", None, dumps(event("x", "bad", team=m)).replace(
            b'"csat":1', b'"csat":NaN'), "invalid_json"),
        ("timestamps", None, dumps(event("x", "bad", occurred_at="2026-02-30T10:00:00Z",
                                         team=m)), "invalid_timestamp"),
        ("timestamps", None, dumps(event("x", "bad", occurred_at="yesterday", team=m)),
         "invalid_value"),
        # valid in form, under the right key: the time policy decides
        ("timestamps", b"future-1", dumps(event("f-1", "future-1", team=m,
                                                occurred_at="9999-12-31T23:59:59Z")),
         "too_far_in_future"),
        ("timestamps", b"future-2", dumps(event("f-2", "future-2", team=m,
                                                occurred_at=iso(time.time() + 86400))),
         "too_far_in_future"),
        # a customer whose latest event is recent: one 30 days older is too late
        ("timestamps", b"good-late", dumps(event("late-1", "good-late", occurred_at=old,
                                                 team=m)), "too_late"),
        # a customer's first event is judged on its own: history can be back-filled
        ("timestamps", None, dumps(event("past-1", "fresh-past", csat=5,
                                         occurred_at="0001-01-01T00:00:00Z")), ACCEPTED),
        ("keys", b"", dumps(event("k-1", "rekey-1")), REKEYED),
        ("keys", NO_KEY, dumps(event("k-2", "rekey-2")), REKEYED),
        ("keys", b"someone-else", dumps(event("k-3", "rekey-3")), REKEYED),
        ("keys", b"\xff" * 20_000, dumps(event("k-4", "rekey-4")), REKEYED),
        ("duplicate event ids", None, dumps(event("d-1", "dup-1")), DUPLICATE),
        ("duplicate event ids", None, dumps(event("d-1", "dup-1")), DUPLICATE),
        ("duplicate event ids", None, dumps(event("d-1", "dup-1")), DUPLICATE),
    ]
    out: list[tuple[str, bytes | None, bytes | None, str]] = []
    for i, (kind, key, value, expect) in enumerate(rows):
        if key is None:  # unique keys tell the dead letters apart; valid events: their own
            key = (f"bad-{i}".encode() if not expect.startswith("rule:")
                   else orjson.loads(value)["customer_id"].encode())
        out.append((kind, None if key is NO_KEY else key, value, expect))
    return out


async def test_bad_records_are_dead_lettered_or_handled_and_the_worker_keeps_going(
    kafka: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = fault_env(kafka, tmp_path / "data")
    worker = WorkerProcess(env, tmp_path / "worker.log")
    bad = corpus()
    good = [event(f"g-{i}", f"good-{i}") for i in range(len(bad) + 1)]
    good.append(event("late-0", "good-late"))  # the latest event of the "too late" customer
    records: list[tuple[bytes | None, bytes]] = [
        (b"good-late", dumps(good[-1]))]
    for i, (_, key, value, _) in enumerate(bad):
        records.append((key, value))  # type: ignore[arg-type]
        records.append((f"good-{i}".encode(), dumps(good[i])))
    records.append((f"good-{len(bad)}".encode(), dumps(good[len(bad)])))
    try:
        worker.start()
        await produce(kafka, env["MOT_TOPIC_EVENTS"], records)

        want_alerts = {alert_id("failed-moment", e["customer_id"], e["event_id"])
                       for e in good}
        want_alerts |= {alert_id("failed-moment", f"rekey-{i}", f"k-{i}") for i in range(1, 5)}
        want_alerts.add(alert_id("failed-moment", "dup-1", "d-1"))
        n_dead = sum(1 for *_, expect in bad if not expect.startswith("rule:"))
        deadline = time.monotonic() + 90
        while True:
            alerts = {orjson.loads(v)["alert_id"]
                      for _, v in await read_topic(kafka, env["MOT_TOPIC_ALERTS_FAILED_MOMENT"])}
            dead = await read_topic_with_headers(kafka, env["MOT_TOPIC_DEAD_LETTER"])
            if (want_alerts <= alerts and len(dead) >= n_dead) or time.monotonic() > deadline:
                break
            time.sleep(1)

        by_key = {k: reason for k, reason in dead}
        metrics = worker.metrics()
        sent, dead_lettered, by_rule = Counter(), Counter(), Counter()
        wrong: list[str] = []
        reasons: dict[str, set[str]] = defaultdict(set)
        for kind, key, _, expect in bad:
            sent[kind] += 1
            if expect.startswith("rule:"):
                by_rule[kind] += 1
                continue
            got = by_key.get(key)
            if got is not None:
                dead_lettered[kind] += 1
                reasons[kind].add(got)
            if got != expect:
                wrong.append(f"{kind} {key!r}: expected {expect}, got {got}")
        rows = [f"{'kind':<22}{'sent':>6}{'dead-lettered':>15}{'by rule':>9}  reasons"]
        for kind in sent:
            rows.append(f"{kind:<22}{sent[kind]:>6}{dead_lettered[kind]:>15}"
                        f"{by_rule[kind]:>9}  {', '.join(sorted(reasons[kind]))}")
        rekeyed = metric_value(metrics, "mot_events_rekeyed_total")
        duplicates = metric_value(metrics, "mot_events_duplicate_total")
        health = worker.get("/health")[0]
        rows.append(f"{'total':<22}{sum(sent.values()):>6}{sum(dead_lettered.values()):>15}"
                    f"{sum(by_rule.values()):>9}  rekeyed={int(rekeyed)} "
                    f"duplicates={int(duplicates)} good events={len(good)} "
                    f"alerts missing={len(want_alerts - alerts)} health={health}")
        report(capsys, *rows)

        assert not wrong, wrong
        assert len(dead) == n_dead, "nothing else is dead-lettered"
        assert want_alerts <= alerts, "every good event around the bad ones was processed"
        assert alert_id("failed-moment", "good-late", "late-1") not in alerts
        assert rekeyed == 4 and duplicates == 2
        assert worker.proc is not None and worker.proc.poll() is None
        assert health == 200
        log = worker.log_path.read_text(errors="replace")
        assert MARKER not in log, "no payload in the log at the default level"
        assert "internal error" not in log
    finally:
        worker.stop()


async def read_topic_with_headers(bootstrap: str, topic: str) -> list[tuple[bytes, str]]:
    """``(key, mot.reason)`` of every dead letter so far."""
    from tests.harness import consume

    records = await consume(bootstrap, topic, timeout=5, idle=0)
    return [(r.key or b"", r.headers.get("mot.reason", b"").decode()) for r in records]
