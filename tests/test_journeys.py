"""Journey state and drop-off detection, through the same ``process_record`` the
stream and offline replay run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest
from msgspec.structs import replace

from agents.domain.attribution import BlameConfig
from agents.domain.customer_state import CustomerState
from agents.domain.drop_off import drop_off_alert, drop_off_id
from agents.domain.journeys import (
    COMPLETED,
    DROPPED,
    EVICTED,
    OPEN,
    JourneyConfig,
    Journeys,
    earliest_deadline,
    expire_journeys,
    journey_status,
    stream_watermark,
)
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record, process_silence_check

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()
NOW = T0 + 30 * 86400
SCHEMA = json.loads((Path(__file__).parent.parent / "schemas"
                     / "drop-off-alert.v1.schema.json").read_text())
CFG = ModelConfig(journeys=JourneyConfig(
    timeout_s=600.0, end_touchpoints=frozenset({"delivery.parcel"}), max_open=2,
    max_moments=4))


def at(minute: float) -> str:
    return datetime.fromtimestamp(T0 + minute * 60, UTC).isoformat()


def ev(eid: str, tp: str, minute: float, cid: str = "c1", jid: str | None = "j1",
       **signals: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"event_id": eid, "customer_id": cid, "occurred_at": at(minute),
                         "touchpoint": tp, **signals}
    if jid is not None:
        e["journey_id"] = jid
        e.setdefault("journey", "purchase")
    if not any(k in e for k in ("outcome", "csat", "ces", "nps", "sentiment", "duration_s")):
        e["outcome"] = "success"
    return e


class Run:
    """Feed events through process_record with an in-memory table."""

    def __init__(self, cfg: ModelConfig = CFG) -> None:
        self.cfg = cfg
        self.store: dict[str, CustomerState] = {}
        self.alerts: list[dict[str, Any]] = []

    def send(self, *events: dict[str, Any]) -> Run:
        for e in events:
            done = process_record(orjson.dumps(e), e["customer_id"].encode(), self.store.get,
                                  self.cfg, 65536, NOW)
            assert done.rejected is None, done.rejected
            if done.state is not None:
                self.store[e["customer_id"]] = done.state
            self.alerts += [o.value for o in done.outputs if o.kind == "drop-off"]
        return self

    def journeys(self, cid: str = "c1") -> Journeys | None:
        return self.store[cid].journeys


def test_a_journey_keeps_its_moments_in_order_with_their_quality() -> None:
    r = Run().send(ev("e1", "web.search", 0), ev("e3", "checkout.cart", 2, csat=1),
                   ev("e2", "web.product-page", 1))  # out of order: slotted in by event time
    js = r.journeys()
    assert journey_status(js, "j1") == OPEN
    moments = js.open["j1"].moments
    assert [m.event_id for m in moments] == ["e1", "e2", "e3"]
    assert [m.step for m in moments] == [0, 1, 2]  # steps renumbered
    assert moments[2].quality == pytest.approx(-1.0)
    assert r.alerts == []


def test_completed_by_an_end_touchpoint_or_an_end_marker_and_then_forgotten() -> None:
    r = Run().send(ev("e1", "web.search", 0), ev("e2", "delivery.parcel", 5),
                   ev("f1", "support.faq", 0, jid="j2"),
                   ev("f2", "support.chat", 1, jid="j2", attributes={"journey_end": True}))
    js = r.journeys()
    assert js.open == {}
    assert journey_status(js, "j1") == COMPLETED and journey_status(js, "j2") == COMPLETED
    # a straggler of a completed journey does not open it again
    r.send(ev("e0", "web.search", 4))
    assert journey_status(r.journeys(), "j1") == COMPLETED and r.alerts == []


def test_abandoned_names_the_upstream_failure_not_the_place_of_leaving() -> None:
    r = Run().send(
        ev("e1", "web.search", 0),
        ev("e2", "web.product-page", 1, outcome="failure"),
        ev("e3", "checkout.cart", 2, duration_s=80, expected_duration_s=60),  # q −0.33
        ev("e4", "checkout.payment", 3, outcome="abandoned"))
    [alert] = r.alerts
    jsonschema.validate(alert, SCHEMA)
    assert alert["alert_id"] == drop_off_id("c1", "j1")
    assert alert["trigger"] == "abandoned" and alert["touchpoint"] == "checkout.payment"
    assert alert["culprit"]["touchpoint"] == "web.product-page"
    assert alert["culprit"]["basis"] == "upstream-failure"
    blamed = {f["touchpoint"]: f for f in alert["upstream_failures"]}
    assert set(blamed) == {"web.product-page", "checkout.cart"}  # not checkout.payment
    assert blamed["web.product-page"]["steps_before"] == 2
    assert blamed["checkout.cart"]["steps_before"] == 1
    assert sum(alert["blame_by_touchpoint"].values()) == pytest.approx(1.0, abs=1e-5)
    assert alert["severity"] == "red"  # the product-page failure was at q = −1
    assert alert["evidence"]["event_ids"] == ["e2", "e3", "e4"]
    assert journey_status(r.journeys(), "j1") == DROPPED and r.journeys().open == {}


def test_no_upstream_failure_blames_the_drop_off_point() -> None:
    r = Run().send(ev("e1", "web.search", 0), ev("e2", "checkout.cart", 1, outcome="abandoned"))
    [alert] = r.alerts
    jsonschema.validate(alert, SCHEMA)
    assert alert["culprit"] == {"touchpoint": "checkout.cart", "blame": 1.0,
                                "basis": "drop-off-point"}
    assert alert["upstream_failures"] == [] and alert["severity"] == "amber"


def test_a_duplicate_leaves_the_open_journeys_from_which_the_deadline_is_restored() -> None:
    """A re-read event changes no journey; the state it finds still tells the deadline,
    which the worker writes back to its index if a crash lost the index's entry."""
    r = Run().send(ev("e1", "web.search", 0), ev("e2", "web.product-page", 1, jid="j2"),
                   ev("e3", "web.search", 3))
    before = r.journeys()
    assert earliest_deadline(before, CFG.journeys.timeout_s) == pytest.approx(T0 + 60 + 600)
    r.send(ev("e1", "web.search", 0))  # read again after a crash
    assert r.journeys() == before
    assert earliest_deadline(None, CFG.journeys.timeout_s) is None


def test_silence_past_the_timeout_drops_the_journey_at_the_watermark() -> None:
    r = Run().send(ev("e1", "web.search", 0), ev("e2", "web.product-page", 1, csat=1))
    js = r.journeys()
    last = T0 + 60
    _, change = expire_journeys(js, last + 599.0, CFG.journeys)
    assert change.dropped == [] and change.open_count == 1
    assert change.earliest_deadline == pytest.approx(last + 600)
    left, change = expire_journeys(js, last + 600.0, CFG.journeys)
    assert change.closed == [DROPPED] and change.open_count == 0
    assert journey_status(left, "j1") == DROPPED
    alert = drop_off_alert("c1", change.dropped[0], CFG.journeys,
                           CFG.quality.failed_threshold, CFG.quality.red_quality, NOW)
    jsonschema.validate(alert, SCHEMA)
    assert alert["trigger"] == "timeout" and alert["touchpoint"] == "web.product-page"
    assert alert["culprit"]["touchpoint"] == "web.product-page"
    assert alert["upstream_failures"][0]["steps_before"] == 1  # the step that never came
    assert alert["silent_for_s"] == pytest.approx(600.0)
    assert alert["alert_id"] == drop_off_id("c1", "j1")


def test_the_silence_check_drops_the_journey_and_sends_the_drop_off_of_the_event_path() -> None:
    r = Run().send(ev("e1", "web.search", 0), ev("e2", "web.product-page", 1, csat=1))
    state = r.store["c1"]
    last = T0 + 60
    quiet = process_silence_check(state, "c1", last + 599.0, CFG, NOW)
    assert quiet.outputs == [] and quiet.state is None  # nothing due: the state stays as it is
    assert quiet.journeys.open_count == 1
    checked = process_silence_check(state, "c1", last + 600.0, CFG, NOW)
    [out] = checked.outputs
    _, change = expire_journeys(state.journeys, last + 600.0, CFG.journeys)
    assert out.kind == "drop-off" and out.key == "c1"
    assert out.value == drop_off_alert("c1", change.dropped[0], CFG.journeys,
                                       CFG.quality.failed_threshold, CFG.quality.red_quality,
                                       NOW)
    jsonschema.validate(out.value, SCHEMA)
    assert checked.state is not None and checked.journeys.closed == [DROPPED]
    assert journey_status(checked.state.journeys, "j1") == DROPPED
    assert replace(checked.state, journeys=None) == \
        replace(state, journeys=None)  # only the journeys changed
    assert r.store["c1"] is state and journey_status(state.journeys, "j1") == OPEN  # unchanged
    again = process_silence_check(checked.state, "c1", last + 600.0, CFG, NOW)
    assert [o.value for o in again.outputs] == [out.value]  # read again: the same alert
    nobody = process_silence_check(None, "c9", last + 600.0, CFG, NOW)
    assert nobody.outputs == [] and nobody.state is None and nobody.journeys.open_count == 0


def test_the_customers_own_later_event_drops_their_silent_journey() -> None:
    r = Run().send(ev("e1", "web.search", 0), ev("e2", "web.product-page", 1, csat=1),
                   ev("s1", "support.faq", 5, jid="j2"))
    assert r.alerts == []
    r.send(ev("s2", "support.chat", 11.5, jid="j2"))  # 10.5 min after j1's last moment
    [alert] = r.alerts
    assert alert["journey_id"] == "j1" and alert["trigger"] == "timeout"
    assert journey_status(r.journeys(), "j2") == OPEN


def test_bounded_state_keeps_failures_and_evicts_the_least_recent_journey() -> None:
    r = Run().send(ev("e1", "a.one", 0, outcome="failure"), ev("e2", "a.two", 1),
                   ev("e3", "a.three", 2), ev("e4", "a.four", 3), ev("e5", "a.five", 4))
    kept = [m.event_id for m in r.journeys().open["j1"].moments]
    assert kept == ["e1", "e3", "e4", "e5"]  # the failure stays; the oldest success goes
    assert r.journeys().open["j1"].steps == 5  # steps still counted
    r.send(ev("x1", "b.one", 5, jid="j2"), ev("y1", "c.one", 6, jid="j3"))
    js = r.journeys()
    assert set(js.open) == {"j2", "j3"} and journey_status(js, "j1") == EVICTED


def test_duplicates_and_events_without_a_journey_change_nothing() -> None:
    r = Run().send(ev("e1", "web.search", 0), ev("e2", "web.product-page", 1))
    before = r.journeys()
    r.send(ev("e2", "web.product-page", 1), ev("n1", "web.home", 2, jid=None))
    assert r.journeys() == before
    assert Run().send(ev("n1", "web.home", 0, cid="c2", jid=None)).store["c2"].journeys is None


def test_blame_half_life_is_configurable() -> None:
    events = [ev("e1", "web.search", 0, outcome="failure"),
              ev("e2", "web.product-page", 1, csat=2),  # q −0.5, one step before leaving
              ev("e3", "checkout.cart", 2, outcome="abandoned")]
    steep = ModelConfig(journeys=JourneyConfig(blame=BlameConfig(half_life_steps=0.5)))
    flat = ModelConfig(journeys=JourneyConfig(blame=BlameConfig(half_life_steps=50.0)))
    assert Run(steep).send(*events).alerts[0]["culprit"]["touchpoint"] == "web.product-page"
    assert Run(flat).send(*events).alerts[0]["culprit"]["touchpoint"] == "web.search"


def test_stream_watermark_advances_with_the_wall_clock_only_when_idle() -> None:
    assert stream_watermark(1000.0, 5000.0, 5030.0, 60.0) == 1000.0
    assert stream_watermark(1000.0, 5000.0, 5090.0, 60.0) == 1030.0
    assert stream_watermark(1000.0, 5000.0, 5090.0, 0.0) == 1090.0
