"""Property-based: whatever the record (bytes, key, any timestamp the pattern admits, any
signal values, hostile bytes from ``tests/hostile.py``), the per-record function rejects
it with one of the documented dead-letter reasons, the one the contract gives where the
input decides it, or scores it; it never raises, so nothing reaches the worker's
internal-error path."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.domain.customer_state import decode_state, encode_state
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record
from tests.hostile import Case, hostile_records

# README "Dead letters", internal_error aside (a defect of ours, never an input's fault)
REASONS = {"empty_record", "too_large", "invalid_json", "not_an_object", "missing_field",
           "unknown_field", "wrong_type", "out_of_range", "invalid_value", "invalid_timestamp",
           "no_outcome_signal", "too_late", "too_far_in_future"}

CFG = ModelConfig()
NOW = 1_780_000_000.0

timestamps = st.builds(
    lambda y, mo, d, h, mi, off: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:00{off}",
    st.integers(0, 9999), st.integers(1, 12), st.integers(1, 31), st.integers(0, 23),
    st.integers(0, 59),
    st.sampled_from(["Z", "+23:59", "-23:59", "+00:00", "z", ".999999999Z"]))
values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),
                   st.floats(allow_nan=False), st.text(max_size=20))


@st.composite
def events(draw: Any) -> dict[str, Any]:
    e: dict[str, Any] = {"event_id": draw(st.text(min_size=1, max_size=8)),
                         "customer_id": draw(st.sampled_from(["a", "b", "é", "c\x00"])),
                         "occurred_at": draw(timestamps), "touchpoint": "t.x"}
    for name in draw(st.lists(st.sampled_from(
            ["outcome", "csat", "ces", "nps", "sentiment", "duration_s",
             "expected_duration_s", "weight", "attributes"]), max_size=4)):
        e[name] = draw(values)
    return e


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(events(), st.booleans()), min_size=1, max_size=6))
def test_no_sequence_of_records_raises(records: list[tuple[dict[str, Any], bool]]) -> None:
    states: dict[str, Any] = {}
    for e, right_key in records:
        key = e["customer_id"].encode() if right_key else b"other"
        done = process_record(orjson.dumps(e), key, states.get, CFG, 65536, NOW)
        assert (done.rejected is not None) + (done.rekey is not None) + (
            done.result is not None) == 1
        if done.rejected is not None:
            assert done.rejected[0] in REASONS and done.rejected[1], done.rejected
        if done.state is not None:
            states[e["customer_id"]] = decode_state(encode_state(done.state))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.one_of(st.none(), st.binary(max_size=10)))
def test_no_bytes_raise(value: bytes, key: bytes | None) -> None:
    done = process_record(value, key, {}.get, CFG, 256, NOW)
    assert done.rejected is not None or done.rekey is not None or done.result is not None
    if not value:
        assert done.rejected is not None and done.rejected[0] == "empty_record"
    elif len(value) > 256:
        assert done.rejected is not None and done.rejected[0] == "too_large"
    elif done.rejected is not None:
        assert done.rejected[0] in REASONS


@settings(deadline=None)
@given(hostile_records())
def test_hostile_records_are_dead_lettered_with_their_reason_or_scored(case: Case) -> None:
    raw, limit, reason = case
    customer_id = json.loads(raw)["customer_id"] if reason is None else "c-1"
    done = process_record(raw, customer_id.encode(), {}.get, CFG, limit, NOW)
    if reason is None:
        assert done.rejected is None and done.result is not None, done.rejected
        assert done.customer_id == customer_id and not done.result.duplicate
    else:
        assert done.rejected is not None and done.rejected[0] == reason, raw[:300]
