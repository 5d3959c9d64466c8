"""A customer's state under new, duplicate, late and future moments, and the alert it yields."""

from __future__ import annotations

import json

import orjson
import pytest
from jsonschema import Draft202012Validator

from agents.domain.customer_moments import RejectedMoment, record_moment
from agents.domain.customer_state import CustomerState
from agents.domain.failed_moment import failed_moment_alert, failed_moment_id
from agents.domain.model_config import ModelConfig
from schemas import schema_path
from schemas.touchpoint_event import decode_event, event_from

CFG = ModelConfig()
NOW = 1_780_000_000.0
ALERT_SCHEMA = Draft202012Validator(
    json.loads(schema_path("failed-moment-alert.v1").read_text()))


def event(eid: str, at: str = "2026-05-28T20:00:00Z", **signals: object) -> dict:
    return {"event_id": eid, "customer_id": "c-1", "occurred_at": at,
            "touchpoint": "checkout.payment", "channel": "web", **(signals or {"csat": 5})}


def play(*events: dict, state: CustomerState | None = None):
    results = []
    for e in events:
        ev, at = decode_event(orjson.dumps(e), 65536)
        state, result = record_moment(state, ev, at, CFG, NOW)
        results.append(result)
    return state, results


def test_a_failed_moment_takes_lambda_times_its_value_and_is_alerted() -> None:
    state, (good, bad) = play(event("e1", outcome="success"), event("e2", csat=1))
    assert not good.failed and good.score_after == pytest.approx(0.5)
    assert bad.failed and bad.score_before == pytest.approx(0.5)
    assert bad.score_after == pytest.approx(0.5 - 12.0)
    assert state.moments == 2 and state.failures == 1

    alert = failed_moment_alert(event_from(event("e2", csat=1)), bad, CFG, NOW)
    ALERT_SCHEMA.validate(alert)
    assert alert["alert_id"] == failed_moment_id("c-1", "e2")
    assert alert["severity"] == "red"
    assert alert["reason"]["signal"] == "csat" and alert["reason"]["value"] == 1
    assert alert["reason"]["shortfall"] == pytest.approx(0.8)
    assert [m["event_id"] for m in alert["recent_moments"]] == ["e1"]
    assert alert["evidence"] == {"event_ids": ["e2"]}


def test_alert_ids_are_deterministic_and_distinct() -> None:
    # pinned (tests/golden/alert_ids.json pins every kind): a re-sent alert must match
    assert failed_moment_id("c-1", "e2") == "3687da30-55a4-51b9-829a-8a91ae5d6c4a"
    assert failed_moment_id("c-1", "e2") != failed_moment_id("c-1", "e3")
    assert failed_moment_id("c-1", "e2") != failed_moment_id("c-2", "e2")


def test_a_duplicate_event_id_is_counted_once_and_reports_its_original_outcome() -> None:
    state, _ = play(event("e1"), event("e2", csat=1))
    again, (dup,) = play(event("e2", csat=1), state=state)
    assert again == state
    assert dup.duplicate and dup.failed
    assert dup.score_after == pytest.approx(1.0 - 12.0)


def test_moderate_failure_is_amber() -> None:
    _, (r,) = play(event("e1", csat=2))
    assert failed_moment_alert(event_from(event("e1", csat=2)), r, CFG, NOW)["severity"] == "amber"


def test_events_too_far_in_the_future_or_too_late_are_rejected_with_reasons() -> None:
    with pytest.raises(RejectedMoment) as err:
        play(event("e1", at="2027-01-01T00:00:00Z"))
    assert err.value.reason == "too_far_in_future"
    state, _ = play(event("e1", at="2026-05-28T20:00:00Z"))
    with pytest.raises(RejectedMoment) as err:
        play(event("e0", at="2026-05-01T00:00:00Z"), state=state)
    assert err.value.reason == "too_late"


def test_a_late_event_within_the_bound_counts() -> None:
    state, (_, late) = play(event("e1", at="2026-05-28T20:00:00Z"),
                            event("e0", at="2026-05-27T20:00:00Z", csat=1))
    assert late.late and late.failed
    assert state.at == decode_event(orjson.dumps(event("e1")), 65536)[1]


def test_state_stays_bounded() -> None:
    state = None
    for i in range(500):
        state, _ = play(event(f"e{i}"), state=state)
    assert len(state.seen) == CFG.dedupe_window
    assert len(state.recent) == CFG.recent_moments
    assert state.moments == 500
