"""The running score's laws from DOMAIN.md."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.domain.running_score import (
    ScoreConfig,
    apply_moment,
    contribution,
    score_at,
)

CFG = ScoreConfig()
T0 = 1_750_000_000.0
scores = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)


def play(moments: list[tuple[float, float]], cfg: ScoreConfig = CFG,
         score: float = 0.0, at: float | None = None) -> tuple[float, float | None]:
    for q, t in moments:
        score, at = apply_moment(score, at, q, 1.0, t, cfg)
    return score, at


@given(scores)
def test_one_failure_is_undone_by_exactly_twelve_good_moments(start: float) -> None:
    score, at = apply_moment(start, T0, -1.0, 1.0, T0, CFG)
    after_eleven, at11 = play([(1.0, T0)] * 11, score=score, at=at)
    after_twelve, _ = apply_moment(after_eleven, at11, 1.0, 1.0, T0, CFG)
    assert after_twelve == pytest.approx(start, abs=1e-9)
    assert after_eleven == pytest.approx(start - 1.0, abs=1e-9)
    assert after_eleven < start


def test_failure_weighs_recovery_ratio_times_a_success() -> None:
    assert contribution(-0.5, 2.0, CFG) == pytest.approx(-12.0)
    assert contribution(0.5, 2.0, CFG) == pytest.approx(1.0)
    assert contribution(-1.0, 1.0, ScoreConfig(recovery_ratio=5)) == pytest.approx(-5.0)


def test_score_halves_after_one_half_life() -> None:
    s, at = apply_moment(0.0, None, 1.0, 10.0, T0, CFG)
    assert score_at(s, at, T0 + CFG.half_life_s, CFG) == pytest.approx(5.0)
    s2, _ = apply_moment(s, at, 0.0, 1.0, T0 + 2 * CFG.half_life_s, CFG)
    assert s2 == pytest.approx(2.5)


@given(scores, st.floats(min_value=0, max_value=1e10), st.floats(min_value=0.01, max_value=100))
def test_decay_never_flips_the_sign(s: float, dt: float, weight: float) -> None:
    """A neutral moment (q = 0) ``dt`` after the last one, and the score read ``dt``
    later: only decay acts, and it shrinks the score towards 0 without crossing it."""
    moved, at = apply_moment(s, T0, 0.0, weight, T0 + dt, CFG)
    assert at == T0 + dt
    for decayed in (moved, score_at(s, T0, T0 + dt, CFG)):
        assert decayed == 0 or math.copysign(1, decayed) == math.copysign(1, s)
        assert abs(decayed) <= abs(s)
    # a neutral moment that arrives late (dt before the latest) leaves the score alone
    assert apply_moment(s, T0 + dt, 0.0, weight, T0, CFG) == (s, T0 + dt)


@given(st.lists(st.tuples(st.floats(min_value=-1, max_value=1),
                          st.floats(min_value=0, max_value=90 * 86400)),
                min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_arrival_order_does_not_change_the_final_score(moments, rnd: random.Random) -> None:
    timed = [(q, T0 + dt) for q, dt in moments]
    in_order = sorted(timed, key=lambda m: m[1])
    shuffled = list(timed)
    rnd.shuffle(shuffled)
    s1, at1 = play(in_order)
    s2, at2 = play(shuffled)
    assert at1 == at2 == max(t for _, t in timed)
    assert s2 == pytest.approx(s1, rel=1e-9, abs=1e-9)


def test_a_late_moment_counts_decayed_to_the_latest_event_time() -> None:
    s, at = apply_moment(0.0, None, 1.0, 1.0, T0 + CFG.half_life_s, CFG)
    s, at = apply_moment(s, at, -1.0, 1.0, T0, CFG)  # a half-life late
    assert at == T0 + CFG.half_life_s
    assert s == pytest.approx(1.0 - 12.0 / 2)
