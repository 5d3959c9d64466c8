"""Table values as stored: versioned MessagePack that reads back exactly, and v1 (the JSON
of the previous release) read and carried on from with the same alerts and scores."""

from __future__ import annotations

import gzip
from pathlib import Path

import msgspec
import orjson
import pytest

from agents.domain.codec import UnreadableValue
from agents.domain.customer_state import (
    CODEC,
    STATE_VERSION,
    CustomerState,
    RecentMoment,
    decode_state,
    encode_state,
    event_key,
)
from agents.domain.journey_index import CLOCK_CODEC, DEADLINE_CODEC, JourneyDeadline, StreamClock
from agents.domain.journeys import Journey, JourneyMoment, Journeys
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record
from agents.domain.touchpoint_status import CODEC as STATUS_CODEC
from agents.domain.touchpoint_status import Bucket
from tests.golden import v1_upgrade

SAMPLE = Path(__file__).resolve().parents[1] / "samples" / "touchpoints.jsonl.gz"
CFG = ModelConfig()


def sample_states() -> list[CustomerState]:
    """Every state the sample's records produce, in order (one per scored record)."""
    states: dict[str, CustomerState] = {}
    seen = []
    with gzip.open(SAMPLE, "rb") as f:
        for i, line in enumerate(f):
            key = orjson.loads(line).get("customer_id", "").encode()
            d = process_record(line.strip(), key, states.get, CFG, 1 << 20, 1.9e9, (0, i))
            if d.state is not None:
                states[d.customer_id] = d.state
                seen.append(d.state)
    return seen


def test_every_state_of_the_sample_reads_back_equal_and_carries_its_version() -> None:
    states = sample_states()
    assert len(states) > 3000
    assert any(s.journeys and s.journeys.open for s in states)
    assert any(s.circles and s.circles.vicious for s in states)
    assert any(s.sent for s in states) and any(s.alerted for s in states)
    for s in states:
        raw = encode_state(s)
        assert decode_state(raw) == s
        assert msgspec.msgpack.decode(raw)[0] == STATE_VERSION


def test_values_off_the_usual_forms_still_read_back_exactly() -> None:
    moment = JourneyMoment("e1", 100.0000004, "web.search", -0.0, 0, 2.5)  # not whole ms
    journey = Journey("purchase", 90.5, 200.25, 3, [moment])  # last_at is not its moment's
    s = CustomerState(
        score=-1.5, at=300.123, moments=3, failures=1,
        recent=[RecentMoment("e1", 100.0000004, "web.search", -0.0, 0.0),
                RecentMoment("e2", 300.123, "web.home", 0.5, 1.0)],
        seen=[event_key("e2"), event_key("e1")],  # not in the recent moments' order
        journeys=Journeys({"j1": journey}, [], []))
    back = decode_state(encode_state(s))
    assert back == s
    assert str(back.recent[0].quality) == "-0.0" and back.journeys.open["j1"].last_at == 200.25
    odd = CustomerState(recent=[RecentMoment("é" * 3000, 1.0, "x" * 5000, 0.25, 0.0)])
    assert decode_state(encode_state(odd)) == odd


def test_the_encoded_state_is_positional_msgpack_smaller_than_the_json_of_its_values() -> None:
    """Fields by position, no names, not compressed: on the sample the encoded states take
    under three quarters of the JSON of the same values, and a state's bytes are its
    struct's MessagePack behind the version."""
    states = sample_states()
    v1 = sum(len(orjson.dumps(msgspec.to_builtins(s))) for s in states)
    v2 = sum(len(encode_state(s)) for s in states)
    assert v2 < 0.75 * v1
    s = states[-1]
    assert encode_state(s) == b"\x92" + msgspec.msgpack.encode(STATE_VERSION) + \
        msgspec.msgpack.encode(s)


def test_a_value_of_an_unknown_version_is_refused() -> None:
    raw = msgspec.msgpack.encode((STATE_VERSION + 1, msgspec.msgpack.decode(
        encode_state(CustomerState()))[1]))
    with pytest.raises(UnreadableValue):
        decode_state(raw)


def test_v1_values_of_every_table_are_read() -> None:
    assert CLOCK_CODEC.decode(b"[1767225600.5,1767225601.25]") == StreamClock(1767225600.5,
                                                                             1767225601.25)
    assert DEADLINE_CODEC.decode(b"[1767229200.0,3]") == JourneyDeadline(1767229200.0, 3)
    st = STATUS_CODEC.decode(orjson.dumps({
        "b": [[58907520, 40, 2]], "end": 1767225600.0, "F": 1.5, "N": 30.0, "k": 12,
        "bn": 360, "s": 1, "seq": 3, "since": 1767225500.0, "p": 2}))
    assert st.buckets == [Bucket(58907520, 40, 2)] and st.latest_at == 1767225600.0
    assert (st.baseline_failures, st.baseline_events, st.baseline_buckets) == (1.5, 30.0, 12)
    assert (st.baseline_moments, st.status, st.transitions) == (360, 1, 3)
    assert (st.since, st.partition) == (1767225500.0, 2)
    assert (st.applied, st.kept, st.counted) == ({}, [], 0)  # written before counted-once
    for codec, value in ((CLOCK_CODEC, StreamClock(1.0, 2.0)),
                         (DEADLINE_CODEC, JourneyDeadline(3.0, 1)), (STATUS_CODEC, st)):
        assert codec.decode(codec.encode(value)) == value


def test_v1_values_with_and_without_the_counted_once_and_rules_fields_are_read() -> None:
    """The v1 andon's applied offsets, kept transitions and counted moments, a v1 recent
    moment's input offset and a kept alert's rules version come over; a v1 value written
    before them reads with none."""
    kept = [1, 7, "e-7", 0, 1, 1, 1767225600.0, 1767225540.0, 1767225600.0, 40, 9, 0.225,
            0.05, 360]
    st = STATUS_CODEC.decode(orjson.dumps({
        "b": [], "end": None, "F": 0.0, "N": 0.0, "k": 0, "bn": 0, "s": 1, "seq": 1,
        "since": 1767225600.0, "o": {"1": 7, "4": 12}, "t": [kept], "n": 55}))
    assert st.applied == {1: 7, 4: 12} and st.counted == 55
    assert [(k.partition, k.offset, k.event_id, k.transition.seq,
             k.transition.figures.baseline_rate) for k in st.kept] == [(1, 7, "e-7", 1, 0.05)]
    base = {"score": -1.0, "at": 10.0, "moments": 1, "failures": 1, "seen": [5]}
    now = decode_state(orjson.dumps({
        **base, "recent": [["e1", 10.0, "web.home", -1.0, 0.0, -1.0, 42]],
        "alerted": [[5, 0.0, -1.0, "v3"]], "pos": [0, 42],
        "sent": [[5, [["v", "opened", 1, 10.0, 1, False, -1.0, ["e1"]]], "v3"]]}))
    assert now.recent[0].offset == 42 and now.alerted[0].rules_version == "v3"
    assert now.sent[0].rules_version == "v3"
    before = decode_state(orjson.dumps({
        **base, "recent": [["e1", 10.0, "web.home", -1.0, 0.0, -1.0]],
        "alerted": [[5, 0.0, -1.0]], "sent": [[5, [["v", "opened", 1, 10.0, 1, False, -1.0,
                                                     ["e1"]]]]]}))
    assert before.recent[0].offset is None and before.alerted[0].rules_version is None
    assert before.sent[0].rules_version is None and before.position is None


def test_carrying_on_from_v1_states_gives_the_alerts_and_scores_of_the_v1_code() -> None:
    """tests/golden/v1_upgrade.json: the v1 code's states part-way through a story, and
    what the v1 code made of the rest (new events, re-reads from before the upgrade,
    silence checks read twice)."""
    golden = orjson.loads(v1_upgrade.HERE.read_bytes())
    states = {cid: decode_state(raw.encode()) for cid, raw in golden["states"].items()}
    assert any(s.journeys and s.journeys.checks for s in states.values())
    assert any(s.sent for s in states.values())
    out = list(v1_upgrade.second_part(states))
    assert v1_upgrade.digest(out) == golden["digest"]
    assert [orjson.loads(x) for x in out if not x.startswith(b"[")] == golden["scores"]
    kinds: dict[str, int] = {}
    for x in out:
        if x.startswith(b"["):
            kinds[orjson.loads(x)[0]] = kinds.get(orjson.loads(x)[0], 0) + 1
    assert kinds == golden["alerts_by_kind"]
    # and from then on every state is written in the current version
    assert all(msgspec.msgpack.decode(CODEC.encode(s))[0] == STATE_VERSION
               for s in states.values())


def test_the_upgrade_story_runs_the_same_without_the_upgrade() -> None:
    """The same story run by today's code throughout (no v1 states) gives the same."""
    golden = orjson.loads(v1_upgrade.HERE.read_bytes())
    states: dict[str, CustomerState] = {}
    v1_upgrade.first_part(states)
    states = {cid: decode_state(encode_state(s)) for cid, s in states.items()}
    assert v1_upgrade.digest(list(v1_upgrade.second_part(states))) == golden["digest"]


def test_every_table_hands_its_codec_s_bytes_to_faust_unchanged() -> None:
    """Faust must neither encode nor decode the values (store, changelog, restore): a
    restore that reads MessagePack with Faust's json codec fails on every record."""
    from agents import journeys, scoring, suppression, touchpoints  # declares the tables
    from streams.faust_ext.table_access import JsonValues, codec_of

    tables = [scoring.customer_state, journeys.stream_clock, journeys.journey_deadlines,
              journeys.journey_due, touchpoints.touchpoint_status]
    json_tables = [suppression.erasure_suppression]  # a small JSON document per entry
    assert {t.name for t in tables + json_tables} == set(scoring.app.tables)
    for t in tables:
        assert codec_of(t) is not JsonValues, t.name
        assert t.value_serializer == "raw" and t.changelog_topic.value_serializer == "raw"
    for t in json_tables:  # Faust's json codec both ways, as the access layer reads it
        assert codec_of(t) is JsonValues, t.name
        assert t.value_serializer == "json" and t.changelog_topic.value_serializer == "json"
