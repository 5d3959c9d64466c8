"""What makes at-least-once delivery safe: a replayed record after a crash counts
once, re-sends a possibly lost alert with its original id, and rewrites the state so
the changelog holds it; the per-customer state stays small and bounded."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import orjson

from agents.domain.customer_state import decode_state, encode_state
from agents.domain.drop_off import drop_off_alert
from agents.domain.failed_moment import failed_moment_id
from agents.domain.journeys import Journeys, expire_journeys
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record

CFG = ModelConfig()
NOW = 1_780_000_000.0


def stored(value: Journeys | None) -> Journeys | None:
    """Journeys as read back from the table (encoded, decoded)."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(value), type=Journeys | None)


def ev(i: int, **signals: object) -> dict:
    at = f"2026-05-28T{10 + i // 60:02d}:{i % 60:02d}:00Z"
    return {"event_id": f"e{i}", "customer_id": "c-1", "occurred_at": at,
            "touchpoint": "checkout.payment", "channel": "web", **(signals or {"csat": 5})}


def run(events: list[dict], states: dict) -> list:
    done = []
    for e in events:
        d = process_record(orjson.dumps(e), b"c-1", states.get, CFG, 65536, NOW)
        if d.state is not None:
            states["c-1"] = decode_state(encode_state(d.state))  # as the table stores it
        done.append(d)
    return done


def test_a_replayed_failed_moment_older_than_the_recent_ones_re_sends_its_alert() -> None:
    states: dict = {}
    events = [ev(0, csat=1)] + [ev(i) for i in range(1, 20)]
    first = run(events, states)
    original = first[0].outputs[0].value
    assert original["alert_id"] == failed_moment_id("c-1", "e0")
    score = states["c-1"].score

    replay = run(events, states)  # a crash before the offsets were committed

    assert all(d.result.duplicate for d in replay)
    assert states["c-1"].score == score and states["c-1"].moments == 20
    again = [o.value for d in replay for o in d.outputs]
    assert [a["alert_id"] for a in again] == [original["alert_id"]]
    for field in ("severity", "quality", "reason", "score_before", "score_after", "event_id"):
        assert again[0][field] == original[field]


def test_a_duplicate_hands_back_the_state_so_the_changelog_gets_it_again() -> None:
    states: dict = {}
    run([ev(0)], states)
    (dup,) = run([ev(0)], states)
    assert dup.result.duplicate and dup.state == states["c-1"]


def test_a_customer_s_state_stays_bounded_whatever_its_history() -> None:
    states: dict = {}
    run([ev(i, csat=1 + i % 2) for i in range(600)], states)  # every moment failed
    st = states["c-1"]
    assert len(st.seen) == CFG.dedupe_window
    assert len(st.alerted) <= CFG.dedupe_window
    assert len(st.recent) == CFG.recent_moments
    assert len(encode_state(st)) < 8192


# --- circle lifecycle and drop-off alerts re-sent by a duplicate --------------------------

T0 = 1_779_000_000.0  # 2026-05-17, before NOW


def at(minute: float, eid: str, **fields: object) -> dict:
    iso = datetime.fromtimestamp(T0 + minute * 60, UTC).isoformat().replace("+00:00", "Z")
    e = {"event_id": eid, "customer_id": "c-1", "occurred_at": iso,
         "touchpoint": fields.pop("touchpoint", "support.phone"), **fields}
    if not any(k in e for k in ("outcome", "csat")):
        e["csat"] = 5  # a delight
    return e


def story() -> list[dict]:
    """One customer: a virtuous circle opens and ends, a vicious circle opens, escalates
    on a failed recovery and resolves; one journey is abandoned, one goes silent and is
    dropped by the customer's next event."""
    return [
        *(at(i, f"d{i}") for i in range(5)),                      # d4: virtuous opened
        at(10, "f1", csat=1),                                     # virtuous ended
        at(20, "f2", csat=1, journey_id="j1", touchpoint="checkout.cart"),
        at(30, "f3", csat=1, journey_id="j1"),                    # vicious opened
        at(40, "f4", csat=1, recovery_of="f1"),                   # vicious escalated (red)
        at(41, "a1", outcome="abandoned", journey_id="j1", touchpoint="checkout.payment"),
        at(50, "s1", outcome="success", journey_id="j2", touchpoint="web.search"),
        *(at(200 + i, f"g{i}", csat=5, weight=3) for i in range(30)),  # g0 drops j2 (silent)
    ]


def sent(d: object) -> list[dict]:
    return [{k: v for k, v in o.value.items() if k != "detected_at"} for o in d.outputs]


def caused(done: list) -> dict[str, list[dict]]:
    """Per event id, the circle lifecycle and drop-off alerts it caused."""
    return {d.event.event_id: [a for a in sent(d) if a["kind"] != "failed-moment"]
            for d in done}


def test_every_lifecycle_and_drop_off_alert_is_re_sent_by_a_duplicate_of_its_cause() -> None:
    states: dict = {}
    events = story()
    first = caused(run(events, states))
    kinds = {(a["kind"], a.get("lifecycle") or a["trigger"])
             for alerts in first.values() for a in alerts}
    assert kinds == {("virtuous-circle", "opened"), ("virtuous-circle", "ended"),
                     ("vicious-circle", "opened"), ("vicious-circle", "escalated"),
                     ("vicious-circle", "resolved"), ("drop-off", "abandoned"),
                     ("drop-off", "timeout")}
    causes = [eid for eid, alerts in first.items() if alerts]
    assert causes == ["d4", "f1", "f3", "f4", "a1", "g0", causes[-1]]  # the last: resolved
    state = encode_state(states["c-1"])

    for e in events:  # each one read again, alone, after a crash
        (dup,) = run([e], states)
        assert dup.result.duplicate
        again = [a for a in sent(dup) if a["kind"] != "failed-moment"]
        assert again == first[e["event_id"]], e["event_id"]
        assert encode_state(states["c-1"]) == state
    # the whole span again, in order, as the worker re-reads it: the same, nothing new
    replay = caused(run(events, states))
    assert replay == first and encode_state(states["c-1"]) == state
    more = caused(run([at(300, "f9", csat=1)], states))  # no second transition either
    assert more == {"f9": []}


def test_a_duplicate_of_an_event_that_caused_nothing_sends_nothing() -> None:
    states: dict = {}
    events = story()
    run(events, states)
    for eid in ("d0", "d3", "f2", "s1", "g5"):
        (dup,) = run([next(e for e in events if e["event_id"] == eid)], states)
        assert dup.result.duplicate
        assert [a for a in sent(dup) if a["kind"] != "failed-moment"] == []
    (dup,) = run([at(0, "d0")], states)
    assert sent(dup) == []


def test_the_kept_alerts_leave_with_the_dedupe_window() -> None:
    states: dict = {}
    events = story()
    run(events, states)
    assert states["c-1"].sent
    run([at(400 + i, f"n{i}", outcome="success") for i in range(CFG.dedupe_window)], states)
    assert states["c-1"].sent == []
    (dup,) = run([events[4]], states)  # d4, beyond the window: counted again, not re-sent
    assert not dup.result.duplicate


def test_a_silence_check_read_again_re_sends_its_drop_offs_and_drops_nothing_more() -> None:
    states: dict = {}
    run([at(0, "e1", csat=1, journey_id="j1", touchpoint="checkout.cart"),
         at(1, "e2", outcome="success", journey_id="j1"),
         at(2, "e3", outcome="success", journey_id="j2", touchpoint="web.search")], states)
    js = states["c-1"].journeys
    mark = T0 + 2 * 60 + CFG.journeys.timeout_s

    def check(js: Journeys | None) -> tuple[Journeys | None, list[dict], list[str]]:
        left, change = expire_journeys(js, mark, CFG.journeys)
        alerts = [drop_off_alert("c-1", d, CFG.journeys, CFG.quality.failed_threshold,
                                 CFG.quality.red_quality, NOW) for d in change.dropped]
        return stored(left), alerts, change.closed

    left, first, closed = check(js)
    assert [a["journey_id"] for a in first] == ["j1", "j2"] and closed == ["dropped"] * 2
    again_left, again, closed = check(left)  # the same check read again after a crash
    assert again == first and closed == [] and again_left == left
    # the customer's later events do not make it forget: a crash may re-read both
    after = {"c-1": msgspec.structs.replace(states["c-1"], journeys=left)}
    run([at(200, "x1", outcome="success")], after)
    _, later, _ = check(after["c-1"].journeys)
    assert later == first
    # another check (a later watermark) sends nothing
    _, change = expire_journeys(left, mark + 60, CFG.journeys)
    assert change.dropped == [] and change.closed == []


def test_a_silence_check_is_forgotten_after_a_dedupe_window_of_events() -> None:
    states: dict = {}
    run([at(0, "e1", outcome="success", journey_id="j1")], states)
    mark = T0 + CFG.journeys.timeout_s
    left, change = expire_journeys(states["c-1"].journeys, mark, CFG.journeys)
    assert len(change.dropped) == 1
    states["c-1"] = decode_state(encode_state(msgspec.structs.replace(states["c-1"],
                                                                      journeys=left)))
    run([at(100 + i, f"n{i}", outcome="success") for i in range(CFG.dedupe_window - 1)],
        states)
    _, change = expire_journeys(states["c-1"].journeys, mark, CFG.journeys)
    assert len(change.dropped) == 1  # still within the window: re-sent
    run([at(200, "last", outcome="success")], states)
    assert states["c-1"].journeys.checks == []
    _, change = expire_journeys(states["c-1"].journeys, mark, CFG.journeys)
    assert change.dropped == []


def read(events: list[dict], states: dict, first_offset: int, partition: int = 0) -> list:
    """As the worker reads them: each record at its input position."""
    done = []
    for offset, e in enumerate(events, first_offset):
        d = process_record(orjson.dumps(e), b"c-1", states.get, CFG, 65536, NOW,
                           (partition, offset))
        if d.state is not None:
            states["c-1"] = decode_state(encode_state(d.state))
        done.append(d)
    return done


def test_records_read_again_count_once_however_far_back_they_lie() -> None:
    """A crash re-reads everything since the last commit; a fast worker can have handled
    more of one customer's events than the dedupe window remembers by then."""
    states: dict = {}
    events = [ev(i, csat=1 if i % 3 == 0 else 5) for i in range(200)]
    read(events, states, 1000)
    counted = states["c-1"]
    again = read(events, states, 1000)  # all 200 again, 3× the dedupe window
    assert all(d.result.duplicate for d in again)
    assert states["c-1"].moments == 200 and states["c-1"].score == counted.score
    # the newest ones, still in the window, re-send their failed-moment alerts
    assert {o.value["event_id"] for d in again[-20:] for o in d.outputs} == {
        e["event_id"] for e in events[-20:] if e.get("csat") == 1}


def test_a_new_event_is_counted_whatever_offset_it_comes_with() -> None:
    """A producer's retry at a later offset is caught by its id; a new event on a topic
    re-created from offset 0 (later in event time) is counted."""
    states: dict = {}
    read([ev(i) for i in range(10)], states, 500)
    (retry,) = read([ev(9)], states, 510)
    assert retry.result.duplicate
    (fresh,) = read([ev(10)], states, 0)
    assert not fresh.result.duplicate and states["c-1"].moments == 11
    (other,) = read([ev(11)], states, 3, partition=1)  # after a change of partitions
    assert not other.result.duplicate and states["c-1"].moments == 12
