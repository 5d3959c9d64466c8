"""What makes at-least-once delivery safe: a replayed record after a crash counts
once, re-sends a possibly lost alert with its original id, and rewrites the state so
the changelog holds it; the per-customer state stays small and bounded."""

from __future__ import annotations

import orjson

from agents.domain.failed_moment import failed_moment_id
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record

CFG = ModelConfig()
NOW = 1_780_000_000.0


def ev(i: int, **signals: object) -> dict:
    at = f"2026-05-28T{10 + i // 60:02d}:{i % 60:02d}:00Z"
    return {"event_id": f"e{i}", "customer_id": "c-1", "occurred_at": at,
            "touchpoint": "checkout.payment", "channel": "web", **(signals or {"csat": 5})}


def run(events: list[dict], states: dict) -> list:
    done = []
    for e in events:
        d = process_record(orjson.dumps(e), b"c-1", states.get, CFG, 65536, NOW)
        if d.state is not None:
            states["c-1"] = orjson.loads(orjson.dumps(d.state))  # as the table stores it
        done.append(d)
    return done


def test_a_replayed_failed_moment_older_than_the_recent_ones_re_sends_its_alert() -> None:
    states: dict = {}
    events = [ev(0, csat=1)] + [ev(i) for i in range(1, 20)]
    first = run(events, states)
    original = first[0].outputs[0].value
    assert original["alert_id"] == failed_moment_id("c-1", "e0")
    score = states["c-1"]["score"]

    replay = run(events, states)  # a crash before the offsets were committed

    assert all(d.result.duplicate for d in replay)
    assert states["c-1"]["score"] == score and states["c-1"]["moments"] == 20
    again = [o.value for d in replay for o in d.outputs]
    assert [a["alert_id"] for a in again] == [original["alert_id"]]
    for field in ("severity", "quality", "reason", "score_before", "score_after", "event_id"):
        assert again[0][field] == original[field]


def test_a_duplicate_hands_back_the_state_so_the_changelog_gets_it_again() -> None:
    states: dict = {}
    run([ev(0)], states)
    (dup,) = run([ev(0)], states)
    assert dup.result.duplicate and dup.state == states["c-1"]


def test_a_customer_s_state_stays_bounded_whatever_its_history() -> None:
    states: dict = {}
    run([ev(i, csat=1 + i % 2) for i in range(600)], states)  # every moment failed
    st = states["c-1"]
    assert len(st["seen"]) == CFG.dedupe_window
    assert len(st["alerted"]) <= CFG.dedupe_window
    assert len(st["recent"]) == CFG.recent_moments
    assert len(orjson.dumps(st)) < 8192
