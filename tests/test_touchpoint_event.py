"""The typed decoder, its explanation of a rejection and the published JSON Schema (generated
from the same definition) agree, and no input crashes them."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from schemas import schema_path
from schemas.touchpoint_event import (
    REGENERATE,
    InvalidEvent,
    TouchpointEvent,
    decode_event,
    json_schema_text,
    validate_event,
)
from tests.hostile import (
    Case,
    base_fields,
    duplicate_keys,
    edge_numbers,
    good_unicode,
    hostile_records,
    padded,
    record,
)

SCHEMA = json.loads(schema_path("touchpoint-event.v1").read_text())
JSON_SCHEMA = Draft202012Validator(SCHEMA)
LIMIT = 65536

VALID = {
    "event_id": "e-1", "customer_id": "c-1", "occurred_at": "2026-03-01T10:00:00+01:00",
    "touchpoint": "checkout.payment", "channel": "web", "journey_id": "j-1",
    "journey": "purchase", "stage": "second", "weight": 2.5, "recovery_of": "e-0",
    "team": "payments", "attributes": {"order": "o-9"}, "outcome": "failure", "csat": 2,
    "ces": 3, "nps": 4, "sentiment": -0.5, "duration_s": 120, "expected_duration_s": 60,
}


def test_the_schema_itself_is_valid_draft_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_the_committed_schema_is_the_one_generated_from_the_event_type() -> None:
    assert schema_path("touchpoint-event.v1").read_text() == json_schema_text(), (
        f"schemas/touchpoint-event.v1.schema.json is stale: run `{REGENERATE}`")


def decoded_reason(event: object) -> str | None:
    """The hot path's verdict on ``event`` sent as JSON: None (valid) or its reason."""
    try:
        decode_event(orjson.dumps(event), LIMIT)
    except InvalidEvent as exc:
        assert exc.detail
        return exc.reason
    return None


def test_a_full_event_passes_all_three() -> None:
    assert JSON_SCHEMA.is_valid(VALID)
    assert validate_event(VALID) == pytest.approx(1772355600.0)
    event, at = decode_event(orjson.dumps(VALID), LIMIT)
    assert at == pytest.approx(1772355600.0)
    assert (event.touchpoint, event.weight, event.attributes) == ("checkout.payment", 2.5,
                                                                  {"order": "o-9"})


def test_numbers_keep_the_type_they_were_sent_with() -> None:
    """Alerts quote a signal's value as sent: 2 stays 2, 2.0 stays 2.0."""
    event, _ = decode_event(orjson.dumps(_without(csat=2.0, sentiment=1, duration_s=120.0)),
                            LIMIT)
    assert (type(event.csat), type(event.sentiment), type(event.duration_s)) == (
        float, int, float)
    event, _ = decode_event(orjson.dumps(_without("weight")), LIMIT)
    assert event.weight_or_default == 1.0 and type(event.csat) is int


@pytest.mark.parametrize("name", ["touchpoint", "channel", "journey", "occurred_at"])
def test_a_final_newline_is_not_part_of_a_pattern(name: str) -> None:
    """In JSON Schema's (ECMA 262) patterns $ is the end of the text; in Python's, which
    msgspec and the jsonschema package search with, it also matches before a final
    newline. The decoder refuses the newline as the contract does."""
    event = _without(**{name: VALID[name] + "\n"})
    assert decoded_reason(event) == "invalid_value"
    with pytest.raises(InvalidEvent) as err:
        validate_event(event)
    assert err.value.reason == "invalid_value"


def _without(*names: str, **changes: object) -> dict:
    out = {k: v for k, v in VALID.items() if k not in names}
    out.update(changes)
    return out


SIGNALS = ("outcome", "csat", "ces", "nps", "sentiment", "duration_s", "expected_duration_s")


@pytest.mark.parametrize(("event", "reason"), [
    ([1, 2], "not_an_object"),
    ("x", "not_an_object"),
    (_without("event_id"), "missing_field"),
    (_without("occurred_at"), "missing_field"),
    (_without(*SIGNALS), "no_outcome_signal"),
    (_without("expected_duration_s"), "missing_field"),
    (_without(csat=6), "out_of_range"),
    (_without(csat=True), "wrong_type"),
    (_without(csat=2.5), "wrong_type"),
    (_without(nps=-1), "out_of_range"),
    (_without(sentiment=1.5), "out_of_range"),
    (_without(weight=0), "out_of_range"),
    (_without(expected_duration_s=0), "out_of_range"),
    (_without(customer_id=""), "invalid_value"),
    (_without(customer_id=None), "wrong_type"),
    (_without(customer_id=7), "wrong_type"),
    (_without(event_id="x" * 129), "invalid_value"),
    (_without(outcome="meh"), "invalid_value"),
    (_without(stage="third"), "invalid_value"),
    (_without(touchpoint="has space"), "invalid_value"),
    (_without(occurred_at="2026-03-01T10:00:00"), "invalid_value"),
    (_without(occurred_at="yesterday"), "invalid_value"),
    (_without(attributes=[1]), "wrong_type"),
    (_without(attributes={str(i): i for i in range(33)}), "invalid_value"),
    (_without(csta=1), "unknown_field"),
])
def test_each_kind_of_bad_event_is_rejected_by_all_three_with_a_reason(event, reason) -> None:
    assert not JSON_SCHEMA.is_valid(event)
    with pytest.raises(InvalidEvent) as err:
        validate_event(event)
    assert err.value.reason == reason
    assert decoded_reason(event) == reason


def test_calendar_impossible_dates_are_rejected() -> None:
    with pytest.raises(InvalidEvent) as err:
        validate_event(_without(occurred_at="2026-02-30T10:00:00Z"))
    assert err.value.reason == "invalid_timestamp"
    assert decoded_reason(_without(occurred_at="2026-02-30T10:00:00Z")) == "invalid_timestamp"


def test_integral_floats_count_as_integers_like_json_schema_says() -> None:
    event = _without(csat=2.0)
    assert JSON_SCHEMA.is_valid(event)
    validate_event(event)
    assert decoded_reason(event) is None


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "empty_record"),
    (None, "empty_record"),
    (b"not json", "invalid_json"),
    (b"\xff\xfe{}", "invalid_json"),
    (b'{"a": NaN}', "invalid_json"),
    (b"[" * 5000 + b"]" * 5000, "invalid_json"),
    (b"x" * (LIMIT + 1), "too_large"),
])
def test_undecodable_records(raw, reason) -> None:
    with pytest.raises(InvalidEvent) as err:
        decode_event(raw, LIMIT)
    assert err.value.reason == reason


# --- agreement on generated events ----------------------------------------------------

text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n"), max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-20, 200),
                    st.floats(-20, 200, allow_nan=False), text)
field_values = {
    "event_id": st.one_of(text, scalars),
    "customer_id": st.one_of(st.just("c-1"), scalars),
    "occurred_at": st.one_of(st.sampled_from([
        "2026-03-01T10:00:00Z", "2026-03-01 10:00:00.5-05:00", "2026-03-01T10:00:00",
        "2026-13-01T10:00:00Z", "2026-03-01T24:00:00Z", "2026-03-01t10:00:00z"]), scalars),
    "touchpoint": st.one_of(st.sampled_from(["web.home", "a", "-x", "x y"]), scalars),
    "channel": st.one_of(st.sampled_from(["web", "app", ""]), scalars),
    "stage": st.one_of(st.sampled_from(["first", "second", "third"]), scalars),
    "weight": scalars,
    "attributes": st.one_of(st.dictionaries(text, scalars, max_size=3), scalars),
    "outcome": st.one_of(st.sampled_from(["success", "delight", "failure", "abandoned"]),
                         scalars),
    "csat": scalars, "ces": scalars, "nps": scalars, "sentiment": scalars,
    "duration_s": scalars, "expected_duration_s": scalars,
    "bogus": scalars,
}
events = st.fixed_dictionaries(
    {"event_id": st.just("e-1"), "customer_id": st.just("c-1"),
     "occurred_at": st.just("2026-03-01T10:00:00Z"), "touchpoint": st.just("web.home")},
).flatmap(lambda base: st.fixed_dictionaries(
    {}, optional=field_values).map(lambda extra: {**base, **extra}))


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(events)
def test_decoder_explanation_and_json_schema_agree(event: dict) -> None:
    try:
        validate_event(event)
        explained = None
    except InvalidEvent as exc:
        explained = exc.reason
    # the same verdict and reason from the typed decoder as from the explanation
    assert decoded_reason(event) == explained, event
    ours = explained in (None, "invalid_timestamp")  # calendar checks are beyond the pattern
    assert ours == JSON_SCHEMA.is_valid(event), event


json_values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                     st.dictionaries(text, inner, max_size=4)), max_leaves=20)


@given(st.one_of(st.binary(max_size=300), json_values.map(orjson.dumps), events.map(orjson.dumps)))
def test_no_input_raises_anything_but_a_rejection(raw: bytes) -> None:
    try:
        decode_event(raw, LIMIT)
    except InvalidEvent as exc:
        assert exc.reason and exc.detail


# --- hostile bytes: the reason each one gets --------------------------------------------

def reason_of(raw: bytes, limit: int) -> str | None:
    try:
        decode_event(raw, limit)
    except InvalidEvent as exc:
        assert exc.detail
        return exc.reason
    return None


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(hostile_records())
def test_each_hostile_record_gets_the_reason_the_contract_gives(case: Case) -> None:
    raw, limit, reason = case
    assert reason_of(raw, limit) == reason, raw[:300]


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(duplicate_keys(), edge_numbers(), good_unicode()))
def test_the_json_schema_agrees_on_duplicates_numbers_and_unicode(case: Case) -> None:
    """What parses as JSON for Python too is valid for the published schema exactly when
    the validator accepts it (calendar checks aside)."""
    raw, _, reason = case
    if reason == "invalid_json":
        return
    event = json.loads(raw)  # Python's json also keeps the last of duplicate names
    assert JSON_SCHEMA.is_valid(event) == (reason in (None, "invalid_timestamp")), raw


@pytest.mark.parametrize(("raw", "reason"), [
    (record(base_fields(attributes=b'{"d":' + b"[" * 1021 + b"]" * 1021 + b"}")), None),
    (record(base_fields(attributes=b'{"d":' + b"[" * 1023 + b"]" * 1023 + b"}")),
     "invalid_json"),
    (padded(LIMIT), None),
    (padded(LIMIT + 1), "too_large"),
    (record(base_fields(csat=b"NaN")), "invalid_json"),
    (record(base_fields(csat=b"1e309")), "invalid_json"),
    (record(base_fields(csat=b"-0")), "out_of_range"),
    (record(base_fields(nps=b"-0")), None),
    (record(base_fields(weight=b"-0.0")), "out_of_range"),
    (record(base_fields(csat=b"18446744073709551616")), "out_of_range"),
    (record([*base_fields(), (b"csat", b"9")]), "out_of_range"),
    (record([*base_fields(csat=b"9"), (b"csat", b"3")]), None),
    (record(base_fields(event_id=b'"e\xff"')), "invalid_json"),
    (record(base_fields(event_id=b'"\\ud800"')), "invalid_json"),
])
def test_hostile_edges_by_example(raw: bytes, reason: str | None) -> None:
    assert reason_of(raw, LIMIT) == reason


def test_the_decoded_event_is_the_contract_type_and_patterns_hold_after_many_names() -> None:
    """Touchpoint names that matched are remembered (bounded); a bad one is still refused
    once the memory is full."""
    for i in range(5000):
        event, _ = decode_event(orjson.dumps(_without(touchpoint=f"tp.{i}")), LIMIT)
        assert isinstance(event, TouchpointEvent) and event.touchpoint == f"tp.{i}"
    assert decoded_reason(_without(touchpoint="tp 1")) == "invalid_value"
    assert decoded_reason(_without(touchpoint="tp.1")) is None
    assert decoded_reason(_without(channel="no/slash")) == "invalid_value"
