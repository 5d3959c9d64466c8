"""The blame formula for drop-offs: severity and recency weigh, shares sum to 1."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.domain.attribution import (
    BlameConfig,
    Failure,
    blame_by_touchpoint,
    blame_shares,
    culprit,
)

failures_st = st.lists(
    st.builds(Failure, st.sampled_from(["a", "b", "c"]), st.floats(0.2, 1.0),
              st.integers(1, 20), st.floats(0, 86400)),
    min_size=1, max_size=12)


@given(failures_st, st.floats(0.5, 10), st.floats(0, 7200))
def test_shares_sum_to_one_and_are_shares(failures: list[Failure], h: float, hs: float) -> None:
    shares = blame_shares(failures, BlameConfig(h, hs))
    assert len(shares) == len(failures)
    assert math.isclose(sum(shares), 1.0, abs_tol=1e-9)
    assert all(0.0 <= s <= 1.0 for s in shares)
    by_tp = blame_by_touchpoint(failures, shares)
    assert math.isclose(sum(by_tp.values()), 1.0, abs_tol=1e-9)


def test_one_half_life_further_upstream_halves_the_blame() -> None:
    cfg = BlameConfig(half_life_steps=2.0)
    near, far = blame_shares([Failure("a", 1.0, 1, 0), Failure("b", 1.0, 3, 0)], cfg)
    assert near / far == pytest.approx(2.0)


def test_more_severe_weighs_more_at_the_same_distance() -> None:
    mild, severe = blame_shares([Failure("a", 0.3, 2, 0), Failure("b", 0.9, 2, 0)],
                                BlameConfig())
    assert severe / mild == pytest.approx(3.0)


def test_event_time_decay_only_when_configured() -> None:
    fs = [Failure("a", 1.0, 1, 0.0), Failure("b", 1.0, 1, 3600.0)]
    assert blame_shares(fs, BlameConfig(2.0, 0.0)) == pytest.approx([0.5, 0.5])
    recent, old = blame_shares(fs, BlameConfig(2.0, 3600.0))
    assert recent / old == pytest.approx(2.0)


def test_a_severe_failure_two_steps_up_beats_a_mild_one_just_before() -> None:
    fs = [Failure("web.product-page", 1.0, 3, 0), Failure("checkout.cart", 0.3, 1, 0)]
    shares = blame_shares(fs, BlameConfig())
    assert culprit(blame_by_touchpoint(fs, shares))[0] == "web.product-page"


def test_culprit_sums_per_touchpoint_and_ties_go_to_the_most_recent() -> None:
    fs = [Failure("a", 0.5, 4, 0), Failure("b", 0.6, 2, 0), Failure("a", 0.5, 3, 0)]
    by_tp = blame_by_touchpoint(fs, blame_shares(fs, BlameConfig(half_life_steps=1e9)))
    assert culprit(by_tp)[0] == "a"  # 0.5 + 0.5 beats 0.6
    tie = [Failure("x", 1.0, 2, 0), Failure("y", 1.0, 2, 0)]
    assert culprit(blame_by_touchpoint(tie, blame_shares(tie, BlameConfig())))[0] == "y"
    assert culprit({}) is None
    assert blame_shares([], BlameConfig()) == []
