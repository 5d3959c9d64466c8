"""Per-moment quality: the worst signal decides."""

from __future__ import annotations

import pytest

from agents.domain.quality import QualityConfig, is_delight, is_failed, moment_quality
from schemas.touchpoint_event import TouchpointEvent, event_from

CFG = QualityConfig()


def ev(**signals: object) -> TouchpointEvent:
    return event_from({"event_id": "e", "customer_id": "c", "touchpoint": "t",
                       "occurred_at": "2026-01-01T00:00:00Z", **signals})


@pytest.mark.parametrize(("signals", "q"), [
    ({"csat": 1}, -1.0), ({"csat": 3}, 0.0), ({"csat": 5}, 1.0), ({"csat": 2}, -0.5),
    ({"ces": 1}, -1.0), ({"ces": 4}, 0.0), ({"ces": 7}, 1.0),
    ({"nps": 0}, -1.0), ({"nps": 7}, 0.0), ({"nps": 10}, 1.0),
    ({"sentiment": -0.3}, -0.3),
    ({"duration_s": 90, "expected_duration_s": 60}, -0.5),
    ({"duration_s": 600, "expected_duration_s": 60}, -1.0),
    ({"duration_s": 30, "expected_duration_s": 60}, 0.0),
    ({"outcome": "failure"}, -1.0), ({"outcome": "abandoned"}, -1.0),
    ({"outcome": "delight"}, 1.0), ({"outcome": "success"}, 0.5),
])
def test_each_signal_maps_into_minus_one_to_one(signals: dict, q: float) -> None:
    assert moment_quality(ev(**signals), CFG).q == pytest.approx(q)


def test_bad_is_stronger_than_good_and_names_the_failing_signal() -> None:
    quality = moment_quality(ev(outcome="success", csat=5, duration_s=150,
                                expected_duration_s=60), CFG)
    assert quality.q == -1.0
    assert quality.signal == "duration_s"
    assert quality.value == 150


def test_failure_severity_is_configurable() -> None:
    cfg = QualityConfig(failure_severity=0.5)
    assert moment_quality(ev(outcome="failure"), cfg).q == -0.5


def test_thresholds() -> None:
    assert is_failed(-0.21, CFG) and not is_failed(-0.2, CFG)
    assert is_delight(0.6, CFG) and not is_delight(0.59, CFG)
