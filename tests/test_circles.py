"""Vicious and virtuous circles through :func:`process_record`: rules, lifecycle, ids,
duplicates, late events and the out-of-order claim of docs/model.md."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from agents.domain.circles import KINDS, VICIOUS, VIRTUOUS, CircleConfig, lifecycle_id
from agents.domain.customer_state import decode_state, encode_state
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record
from schemas import schema_path

CFG = ModelConfig()
NOW = datetime(2026, 6, 30, tzinfo=UTC).timestamp()
T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
SCHEMAS = {
    kind: Draft202012Validator(json.loads(schema_path(f"{kind}-alert.v1").read_text()),
                               format_checker=FormatChecker())
    for kind in KINDS
}


def ev(eid: str, hours: float, cid: str = "c-1", **signals: Any) -> dict[str, Any]:
    at = (T0 + timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
    return {"event_id": eid, "customer_id": cid, "occurred_at": at,
            "touchpoint": "support.phone", **(signals or {"outcome": "success"})}


def fail(eid: str, hours: float, **kw: Any) -> dict[str, Any]:
    return ev(eid, hours, csat=1, **kw)


def delight(eid: str, hours: float, **kw: Any) -> dict[str, Any]:
    return ev(eid, hours, outcome="delight", **kw)


class Customer:
    """Feeds events through ``process_record`` the way the agent does, keeping states."""

    def __init__(self, cfg: ModelConfig = CFG) -> None:
        self.cfg = cfg
        self.states: dict[str, dict[str, Any]] = {}
        self.alerts: list[dict[str, Any]] = []
        self.rejected: list[str] = []

    def send(self, *events: dict[str, Any]) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        for e in events:
            done = process_record(orjson.dumps(e), e["customer_id"].encode(), self.states.get,
                                  self.cfg, 65536, NOW)
            if done.rejected is not None:
                self.rejected.append(done.rejected[0])
                continue
            if done.state is not None:
                # what the table does: the state is encoded on every update
                self.states[e["customer_id"]] = decode_state(encode_state(done.state))
            for out in done.outputs:
                if out.kind in KINDS:
                    SCHEMAS[out.kind].validate(out.value)
                    assert out.key == e["customer_id"]
                    new.append(out.value)
        self.alerts += new
        return new

    def score(self, cid: str = "c-1") -> float:
        return self.states[cid].score


def steps(alerts: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    return [(a["kind"], a["circle"], a["lifecycle"]) for a in alerts]


def test_three_failures_in_72h_open_once_two_more_escalate_and_good_moments_resolve() -> None:
    c = Customer()
    assert c.send(fail("f1", 0), fail("f2", 30)) == []
    (opened,) = c.send(fail("f3", 71))
    assert opened["lifecycle"] == "opened" and opened["severity"] == "amber"
    assert opened["alert_id"] == lifecycle_id(VICIOUS, "c-1", 1, "opened")
    assert opened["evidence"]["event_ids"] == ["f1", "f2", "f3"]
    assert opened["event_id"] == "f3" and opened["failures"] == 3
    assert opened["score"] < 0

    assert c.send(fail("f4", 72)) == [], "an open circle is updated, not opened again"
    (escalated,) = c.send(fail("f5", 73))
    assert (escalated["lifecycle"], escalated["severity"], escalated["reason"]) == (
        "escalated", "red", "chain")
    assert escalated["circle_id"] == opened["circle_id"]
    assert escalated["evidence"]["event_ids"] == ["f1", "f2", "f3", "f4", "f5"]
    assert c.send(fail("f6", 74)) == [], "red is the top: no second escalation"

    resolved: list[dict[str, Any]] = []
    i = 0
    while not resolved:
        i += 1
        before = c.score()
        resolved = c.send(delight(f"g{i}", 75 + i / 10))
        assert i < 100
    assert before < 0 <= c.score()
    assert steps(resolved) == [(VICIOUS, 1, "resolved")]
    (r,) = resolved
    assert r["severity"] == "green" and r["event_id"] == f"g{i}"
    assert r["duration_s"] > 0 and r["score"] >= 0
    assert c.send(delight("g-more", 80)) == []
    assert steps(c.alerts) == [(VICIOUS, 1, "opened"), (VICIOUS, 1, "escalated"),
                               (VICIOUS, 1, "resolved")]


def test_no_circle_when_failures_are_spread_or_the_score_is_positive() -> None:
    spread = Customer()
    assert spread.send(fail("f1", 0), fail("f2", 40), fail("f3", 80), fail("f4", 120)) == []
    assert spread.score() < 0
    opened, escalated = spread.send(fail("f5", 150))  # f3, f4, f5 lie within 72 h
    assert opened["lifecycle"] == "opened" and opened["failures"] == 5
    assert escalated["lifecycle"] == "escalated", "the chain is already 5 long: red at once"

    rich = Customer()
    rich.send(*(ev(f"g{i}", i / 10) for i in range(80)))
    assert rich.send(fail("f1", 10), fail("f2", 11), fail("f3", 12)) == []
    assert rich.score() >= 0
    (opened,) = rich.send(fail("f4", 13))
    assert opened["lifecycle"] == "opened" and opened["failures"] == 4


def test_duplicates_change_nothing() -> None:
    c = Customer()
    events = [fail("f1", 0), fail("f2", 1), fail("f3", 2), fail("f4", 3), fail("f5", 4),
              *(delight(f"g{i}", 5 + i / 10, weight=2) for i in range(35))]
    c.send(*events)
    assert steps(c.alerts) == [(VICIOUS, 1, "opened"), (VICIOUS, 1, "escalated"),
                               (VICIOUS, 1, "resolved")]
    state = {cid: encode_state(s) for cid, s in c.states.items()}
    first = list(c.alerts)
    again = c.send(*events[-10:], *events[:5])  # re-sent as they were, nothing new
    assert sorted(a["alert_id"] for a in again) == sorted(a["alert_id"] for a in first)
    assert {cid: encode_state(s) for cid, s in c.states.items()} == state


def test_cooldown_holds_back_a_new_circle_after_a_recovery() -> None:
    cfg = replace(CFG, circles=replace(CFG.circles, vicious_cooldown_s=24 * 3600.0))
    c = Customer(cfg)
    c.send(fail("f1", 0), fail("f2", 1), fail("f3", 2))
    c.send(*(delight(f"g{i}", 3 + i / 100) for i in range(40)))
    assert steps(c.alerts) == [(VICIOUS, 1, "opened"), (VICIOUS, 1, "resolved")]
    assert c.alerts[-1]["cooldown_until"] == "2026-05-02T11:00:00.000Z"  # f3 + 24 h

    # flapping: three more failures right away, within the cooldown
    assert c.send(fail("h1", 4), fail("h2", 5), fail("h3", 6)) == []
    assert c.score() < 0
    # a late failure from before the recovery does not count again
    assert c.send(fail("late", 1.5)) == []
    (opened,) = c.send(fail("h4", 26))  # after the cooldown: the chain h1..h4 opens circle 2
    assert opened["alert_id"] == lifecycle_id(VICIOUS, "c-1", 2, "opened")
    assert opened["evidence"]["event_ids"] == ["h1", "h2", "h3", "h4"]
    assert opened["failures"] == 4


def test_a_failed_recovery_escalates_and_a_good_one_is_reported_on_resolution() -> None:
    c = Customer()
    c.send(fail("f1", 0), fail("f2", 1), fail("f3", 2))
    (esc,) = c.send(fail("r1", 3, recovery_of="f2"))
    assert (esc["lifecycle"], esc["reason"], esc["recovery_of"], esc["recovery_event_id"]) == (
        "escalated", "failed_recovery", "f2", "r1")
    c.send(ev("r2", 4, outcome="delight", recovery_of="f3"))
    resolved = c.send(*(delight(f"g{i}", 5 + i / 10) for i in range(60)))
    (r,) = resolved
    assert r["recoveries"] == [{"event_id": "r2", "recovery_of": "f3"}]
    assert "r2" in r["evidence"]["event_ids"]

    early = Customer()  # the failed recovery came before the circle opened
    early.send(fail("f1", 0), fail("r1", 1, recovery_of="f1"))
    assert steps(early.send(fail("f2", 2))) == [(VICIOUS, 1, "opened"),
                                                (VICIOUS, 1, "escalated")]


def test_virtuous_circle_opens_on_repeated_delight_and_ends_at_a_failure() -> None:
    c = Customer()
    c.send(fail("f0", 0))
    c.send(*(delight(f"d{i}", 24 * 20 + i) for i in range(5)))
    assert c.alerts == [], "a failure less than 30 days ago"
    c.send(ev("ok0", 24 * 30))
    c.send(*(delight(f"e{i}", 24 * 31 + i) for i in range(4)))
    assert c.alerts == []
    c.send(ev("ok", 24 * 31 + 5))  # a moment that is fine but not a delight breaks the streak
    c.send(*(delight(f"h{i}", 24 * 31 + 6 + i) for i in range(4)))
    assert c.alerts == []
    (opened,) = c.send(delight("h4", 24 * 31 + 10))
    assert opened["kind"] == VIRTUOUS and opened["lifecycle"] == "opened"
    assert opened["evidence"]["event_ids"] == ["h0", "h1", "h2", "h3", "h4"]
    assert opened["alert_id"] == lifecycle_id(VIRTUOUS, "c-1", 1, "opened")
    assert c.send(delight("h5", 24 * 31 + 11), ev("ok2", 24 * 31 + 12)) == []
    (ended,) = c.send(fail("f1", 24 * 31 + 13))
    assert (ended["lifecycle"], ended["circle_id"]) == ("ended", opened["circle_id"])
    assert ended["evidence"]["event_ids"] == ["f1"] and ended["duration_s"] == 3 * 3600


def test_late_events_count_in_event_time_and_too_late_ones_are_dead_lettered() -> None:
    c = Customer()
    c.send(fail("f3", 100), ev("ok", 110))
    assert c.send(fail("f1", 40)) == [], "60 h before f3 but 2 failures only"
    (opened,) = c.send(fail("f2", 50))  # late, but f1, f2, f3 lie within 72 h
    assert opened["evidence"]["event_ids"] == ["f1", "f2", "f3"]
    c.send(fail("old", 110 - 7 * 24 - 1))
    assert c.rejected == ["too_late"]
    # a delight older than the latest other moment is not part of a streak
    v = Customer()
    v.send(ev("ok", 100), *(delight(f"d{i}", 90 + i) for i in range(5)))
    assert v.alerts == []
    assert v.states["c-1"].circles.delights == []


def test_circle_state_stays_bounded() -> None:
    c = Customer()
    c.send(*(fail(f"f{i}", i / 10) for i in range(500)))
    circles = c.states["c-1"].circles
    assert len(circles.chain) == CFG.circles.vicious_memory
    assert circles.vicious.chain == 500
    c.send(*(delight(f"d{i}", 60 + i / 100) for i in range(500)))
    assert len(c.states["c-1"].circles.delights) == CFG.circles.virtuous_moments
    assert len(encode_state(c.states["c-1"])) < 6000


# --- the out-of-order claim (docs/model.md, "Circles") --------------------------------
# All of a customer's events within the lateness bound of each other, and arrival
# orders that only reorder consecutive moments of the same class: same lifecycle events.

CLASSES = {  # good moments weigh more, so that runs of them resolve circles too
    "fail": fail,
    "delight": lambda eid, hours: delight(eid, hours, weight=8),
    "other": lambda eid, hours: ev(eid, hours, outcome="success", weight=10),
}
PROPERTY_CFG = replace(CFG, max_lateness_s=90 * 86400.0,
                       circles=CircleConfig(virtuous_quiet_s=5 * 86400.0))
runs = st.lists(
    st.tuples(st.sampled_from(sorted(CLASSES)), st.integers(1, 8), st.floats(0, 96)),
    min_size=1, max_size=14,
)


@settings(max_examples=150, deadline=None)
@given(runs=runs, seed=st.integers(0, 2**32 - 1))
def test_reordering_within_runs_of_one_class_gives_the_same_lifecycle(runs, seed) -> None:
    rng = random.Random(seed)
    ordered: list[list[dict[str, Any]]] = []
    clock = 0.0
    n = 0
    for cls, length, gap in runs:
        clock += gap
        run = []
        for _ in range(length):
            n += 1
            run.append(CLASSES[cls](f"e{n}", clock + rng.uniform(0, 48)))
        ordered.append(run)
    assert clock + 48 < 90 * 24

    in_time = Customer(PROPERTY_CFG)
    for run in ordered:
        in_time.send(*sorted(run, key=lambda e: e["occurred_at"]))
    shuffled = Customer(PROPERTY_CFG)
    for run in ordered:
        shuffled.send(*rng.sample(run, len(run)))
    assert not in_time.rejected and not shuffled.rejected
    assert sorted((a["alert_id"], a["lifecycle"]) for a in shuffled.alerts) == sorted(
        (a["alert_id"], a["lifecycle"]) for a in in_time.alerts)
    assert shuffled.score() == pytest.approx(in_time.score(), abs=1e-9)


def test_the_alert_doc_examples_follow_the_contracts() -> None:
    readme = (schema_path("x").parent.parent / "docs" / "alerts.md").read_text()
    decoder = json.JSONDecoder()
    seen = set()
    for block in readme.split("```json")[1:]:
        text = block.split("```")[0].strip()
        while text:
            value, end = decoder.raw_decode(text)
            text = text[end:].strip()
            kind = value.get("kind")
            if kind in SCHEMAS:
                SCHEMAS[kind].validate(value)
                assert value["alert_id"] == lifecycle_id(kind, value["customer_id"],
                                                         value["circle"], value["lifecycle"])
                seen.add((kind, value["lifecycle"]))
    assert seen == {(VICIOUS, "opened"), (VICIOUS, "escalated"), (VICIOUS, "resolved"),
                    (VIRTUOUS, "opened")}
