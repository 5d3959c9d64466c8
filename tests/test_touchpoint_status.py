"""Touchpoint andon: sliding event-time window against the touchpoint's own baseline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.domain.touchpoint_status import (
    AMBER,
    CODEC,
    GREEN,
    LEVELS,
    RED,
    StatusConfig,
    Transition,
    baseline_failure_rate,
    figures,
    judge_batch,
    level,
    observe,
    partition_of,
    status_alert,
    status_level,
    status_view,
    with_partition,
)

SCHEMA = json.loads((Path(__file__).parent.parent / "schemas"
                     / "touchpoint-status-alert.v1.schema.json").read_text())
CFG = StatusConfig(window_s=60, bucket_s=10, baseline_alpha=0.05, min_window_events=20,
                   min_baseline_events=100, amber_ratio=2.0, red_ratio=4.0, min_delta=0.05,
                   hysteresis=0.8)
T0 = 1_790_000_000.0


def feed(st: dict[str, Any] | None, start: float, seconds: int, rate: float,
         per_s: int = 10) -> tuple[dict[str, Any] | None, list[Transition]]:
    """``per_s`` moments a second, every ``1/rate``-th failed (deterministic)."""
    out = []
    n = 0
    acc = 0.0
    for s in range(seconds):
        for k in range(per_s):
            acc += rate
            failed = acc >= 1.0
            if failed:
                acc -= 1.0
            st, t, late = observe(st, start + s + k / per_s, failed, CFG)
            assert not late
            n += 1
            if t is not None:
                out.append(t)
    return st, out


def test_not_judged_until_window_and_baseline_have_enough_moments() -> None:
    st, ts = feed(None, T0, 5, 0.9)  # terrible, but nothing to compare with yet
    assert ts == [] and st.status == GREEN and not figures(st, CFG).judged


def test_a_jump_goes_amber_then_red_and_back_to_green_each_once() -> None:
    st, ts = feed(None, T0, 300, 0.05)
    assert ts == []
    base = figures(st, CFG).baseline_rate
    assert base == pytest.approx(0.05, abs=0.005)
    st, up = feed(st, T0 + 300, 120, 0.40)
    assert [(LEVELS[t.previous], LEVELS[t.status]) for t in up] == [("green", "amber"),
                                                                    ("amber", "red")]
    assert figures(st, CFG).baseline_rate == pytest.approx(base)  # frozen during the incident
    st, down = feed(st, T0 + 420, 200, 0.05)
    # Back at 5 %, the 40 % buckets (T0+300 … T0+419) leave the 6-bucket window one by one.
    # Red holds down to 0.8 · 4 · 0.05 = 0.16: with two of them left (T0+450 … T0+459)
    # the rate is still (2·40 + 3·5 + 5)/600 ≥ 0.167. At T0+460 one is left: (40 + 4·5)/501
    # = 0.1198, under 0.16 but over amber's 2 · 0.05 = 0.1: amber. At T0+470 none is left:
    # 25/501 = 0.0499, under 0.8 · 2 · 0.05 = 0.08: green. Exactly two transitions.
    assert [(LEVELS[t.previous], LEVELS[t.status], t.at - T0, t.figures.failures,
             t.figures.events) for t in down] == [("red", "amber", 460.0, 60, 501),
                                                  ("amber", "green", 470.0, 25, 501)]
    assert [t.seq for t in up + down] == list(range(1, len(up + down) + 1))
    for t in up + down:
        alert = status_alert("checkout.payment", t, "e-1", CFG, T0 + 1000)
        jsonschema.validate(alert, SCHEMA)
        assert alert["status"] == LEVELS[t.status]
    red = status_alert("checkout.payment", up[1], "e-9", CFG, T0 + 1000)
    assert red["window"]["failure_rate"] >= 4 * red["baseline"]["failure_rate"]
    assert red["delta"] >= 0.05 and red["evidence"]["event_ids"] == ["e-9"]


def test_hysteresis_keeps_a_level_near_its_threshold() -> None:
    base = 0.10
    assert level(0.20, base, GREEN, CFG) == AMBER
    assert level(0.17, base, AMBER, CFG) == AMBER  # above 0.8 · 2 · base
    assert level(0.17, base, GREEN, CFG) == GREEN
    assert level(0.15, base, AMBER, CFG) == GREEN
    assert level(0.35, base, RED, CFG) == RED  # above 0.8 · 4 · base
    assert level(0.35, base, AMBER, CFG) == AMBER
    assert level(0.30, base, RED, CFG) == AMBER
    assert level(0.03, 0.0, GREEN, CFG) == GREEN  # below min_delta: no andon for noise
    assert level(0.06, 0.0, GREEN, CFG) == RED


def test_a_rate_hovering_at_the_amber_threshold_does_not_flap() -> None:
    st, _ = feed(None, T0, 300, 0.05)
    st, ts = feed(st, T0 + 300, 120, 0.11)
    assert [LEVELS[t.status] for t in ts] == ["amber"]
    st, ts = feed(st, T0 + 420, 300, 0.095)  # hovering just under the entry threshold
    assert ts == []


def test_moments_older_than_the_window_are_not_counted() -> None:
    st, _ = feed(None, T0, 100, 0.05)
    again, t, late = observe(st, T0 + 100 - 61 - 10, True, CFG)
    assert late and t is None and again == st
    _, _, late = observe(st, T0 + 100 - 30, True, CFG)
    assert not late


def test_the_page_view_and_the_gauges_read_the_status_through_the_domain() -> None:
    st, _ = feed(None, T0, 5, 0.5)
    view = status_view(st, CFG)
    assert view["status"] == "green" and view["since"] is None and view["transitions"] == 0
    assert view["judged"] is False and view["baseline"]["failure_rate"] is None
    assert view["window"]["events"] == 50 and view["window"]["failures"] == 25
    assert view["window"]["end"] == "2026-09-21T14:13:24.900Z"
    st, up = feed(st, T0 + 5, 300, 0.05)
    st, up = feed(st, T0 + 305, 120, 0.40)
    view = status_view(st, CFG)
    assert status_level(st) == up[-1].status and view["status"] == LEVELS[up[-1].status]
    assert view["transitions"] == len(up) and view["since"].endswith("Z")
    assert baseline_failure_rate(st) == pytest.approx(view["baseline"]["failure_rate"])
    assert partition_of(st) is None
    served = with_partition(st, 3)
    assert partition_of(served) == 3 and partition_of(st) is None  # a new value
    assert status_view(served, CFG) == view


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 400), st.booleans()), min_size=1, max_size=400),
       st.lists(st.integers(1, 50), min_size=1, max_size=20))
def test_batches_judged_in_place_equal_moments_observed_one_by_one(
        moments: list[tuple[float, bool]], sizes: list[int]) -> None:
    """The andon counts a batch into one copy of the state (``count_moment``); the result
    is the same as the one-by-one ``observe``, and neither changes the state it was given."""
    cfg = StatusConfig(window_s=60, bucket_s=10, baseline_alpha=0.05, min_window_events=5,
                       min_baseline_events=10, amber_ratio=2.0, red_ratio=4.0,
                       min_delta=0.05, hysteresis=0.8)
    one, one_ts = None, []
    for at, failed in moments:
        given_one, before = one, None if one is None else CODEC.encode(one)
        one, t, _ = observe(one, T0 + at, failed, cfg)
        if given_one is not None:
            assert CODEC.encode(given_one) == before  # the state passed in is unchanged
        if t is not None:
            one_ts.append(t)
    batched, batched_ts, i, k = None, [], 0, 0
    while i < len(moments):
        batch = moments[i:i + sizes[k % len(sizes)]]
        given_state = None if batched is None else CODEC.encode(batched)
        judged = judge_batch(batched, [(T0 + at, f, f"e{i + j}", -1, 0)
                                       for j, (at, f) in enumerate(batch)], cfg)
        if given_state is not None:
            assert CODEC.encode(batched) == given_state  # the state passed in is unchanged
        batched = judged.state
        batched_ts += [t for t, _, _ in judged.transitions]
        i, k = i + len(batch), k + 1
    assert batched_ts == one_ts
    assert batched is not None and one is not None
    assert (batched.buckets, batched.latest_at, batched.status, batched.transitions,
            batched.baseline_failures, batched.baseline_moments) == (
        one.buckets, one.latest_at, one.status, one.transitions, one.baseline_failures,
        one.baseline_moments)
