"""The touchpoint andon under the delivery promise: an observation counts once by its input
position, however often a crash makes it arrive, and a transition it caused is sent again
with the same id; the scoring side re-sends the observation of a record read again, not of
a second copy of an event."""

from __future__ import annotations

import random
from typing import Any

import orjson
from msgspec.structs import replace

from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record
from agents.domain.touchpoint_status import (
    MAX_KEPT_TRANSITIONS,
    StatusConfig,
    TouchpointState,
    judge_batch,
    status_alert,
)

CFG = StatusConfig(window_s=60, bucket_s=10, baseline_alpha=0.05, min_window_events=20,
                   min_baseline_events=100, amber_ratio=2.0, red_ratio=4.0, min_delta=0.05,
                   hysteresis=0.8)
T0 = 1_790_000_000.0
Obs = tuple[float, bool, str, int, int]


def stream(n: int, partitions: int = 2, seed: int = 5) -> list[Obs]:
    """``n`` moments from ``partitions`` input partitions, 10 a second: a calm start, then
    a burst of failures (so the andon goes amber/red and back), offsets per partition."""
    rnd = random.Random(seed)
    offsets = [0] * partitions
    out = []
    for i in range(n):
        p = rnd.randrange(partitions)
        rate = 0.5 if n * 0.45 < i < n * 0.6 else 0.05
        out.append((T0 + i / 10, rnd.random() < rate, f"e-{i}", p, offsets[p]))
        offsets[p] += rnd.randint(1, 3)  # other customers' records, other touchpoints
    return out


def run(batches: list[list[Obs]]) -> tuple[TouchpointState | None, list[dict[str, Any]]]:
    """Judge ``batches`` in order; the state and every alert sent (detected_at fixed)."""
    st = None
    sent = []
    for batch in batches:
        judged = judge_batch(st, batch, CFG)
        sent += [status_alert("web", t, eid, CFG, 0.0) for t, eid, _ in judged.transitions]
        st = judged.state if judged.write else st
    return st, sent


def judged_view(st: TouchpointState | None) -> TouchpointState:
    """The state without the bookkeeping of positions and kept transitions."""
    assert st is not None
    return replace(st, applied={}, kept=[])


def test_each_moment_once_gives_transitions_and_counts_them_all() -> None:
    obs = stream(4000)
    st, sent = run([obs[i:i + 37] for i in range(0, len(obs), 37)])
    assert st is not None and st.counted == len(obs)
    assert [a["transition"] for a in sent] == list(range(1, len(sent) + 1))
    assert len(sent) >= 2, "the burst changes the status and the calm brings it back"


def test_batches_sent_again_after_a_crash_count_nothing_twice() -> None:
    """The scoring worker crashes and re-sends everything since its last commit (some of it
    already judged, some lost with it); the andon's own worker crashes and reads batches
    again from its last commit, its state as of an earlier write. The statuses, windows and
    counts come out as if each moment had come once; every alert id is one of the
    fault-free ones, with the same content, and none is missing."""
    obs = stream(4000)
    clean_state, clean_sent = run([obs[i:i + 37] for i in range(0, len(obs), 37)])
    rnd = random.Random(11)
    batches: list[list[Obs]] = []
    i = 0
    while i < len(obs):
        batch = obs[i:i + rnd.randint(1, 60)]
        batches.append(batch)
        i += len(batch)
        if rnd.random() < 0.15:  # crash: the last few batches again, from a commit before
            back = rnd.randint(1, 5)
            for again in batches[-back:]:
                batches.append(list(again))
    st, sent = run(batches)
    assert judged_view(st) == judged_view(clean_state)
    ids = {a["alert_id"]: a for a in clean_sent}
    assert {a["alert_id"] for a in sent} == set(ids)
    assert all(a == ids[a["alert_id"]] for a in sent)
    assert len(sent) > len(clean_sent), "a re-read transition is sent again"


def test_the_andon_restarting_from_an_older_state_counts_the_batches_again_once() -> None:
    """Its table write was lost with a crash: the state is the one before the batches it
    reads again, so they count (once), and their transitions come with the same ids."""
    obs = stream(3000)
    batches = [obs[i:i + 50] for i in range(0, len(obs), 50)]
    clean_state, clean_sent = run(batches)
    st = None
    sent: list[dict[str, Any]] = []
    for k, batch in enumerate(batches):
        before = st
        judged = judge_batch(st, batch, CFG)
        sent += [status_alert("web", t, e, CFG, 0.0) for t, e, _ in judged.transitions]
        st = judged.state
        if k % 7 == 3:  # crash: the write is lost, the batch read again
            judged = judge_batch(before, batch, CFG)
            sent += [status_alert("web", t, e, CFG, 0.0) for t, e, _ in judged.transitions]
            st = judged.state
    assert judged_view(st) == judged_view(clean_state)
    assert {a["alert_id"] for a in sent} == {a["alert_id"] for a in clean_sent}


def test_a_duplicate_that_caused_a_transition_yields_it_again() -> None:
    obs = stream(3000)
    st, sent = run([obs])
    assert sent
    first = sent[0]
    cause = next(o for o in obs if o[2] == first["evidence"]["event_ids"][0])
    again = judge_batch(st, [cause], CFG)
    assert again.counted == 0 and again.duplicates == 1
    assert [status_alert("web", t, e, CFG, 0.0) for t, e, resent in again.transitions
            if resent] == [first]
    plain = judge_batch(st, [obs[5]], CFG)  # caused nothing: nothing to send
    assert plain.transitions == [] and plain.duplicates == 1


def test_moments_without_a_position_always_count() -> None:
    obs = [(T0 + i, False, f"e-{i}", -1, -1) for i in range(10)]
    st, _ = run([obs, obs])
    assert st is not None and st.counted == 20


def test_the_transitions_kept_for_re_sending_are_bounded() -> None:
    st: TouchpointState | None = None
    for n in range(6):  # the burst six times over, each after a calm
        st = judge_batch(st, [(at + n * 4000, failed, f"{eid}-{n}", p, o + n * 100_000)
                              for at, failed, eid, p, o in stream(3000)], CFG).state
    assert st is not None and st.transitions > MAX_KEPT_TRANSITIONS
    assert len(st.kept) == MAX_KEPT_TRANSITIONS
    assert [k.transition.seq for k in st.kept] == list(
        range(st.transitions - MAX_KEPT_TRANSITIONS + 1, st.transitions + 1))


MODEL = ModelConfig()


def event(i: int, **signal: Any) -> tuple[bytes, bytes]:
    e = {"event_id": f"e-{i}", "customer_id": "c-1", "touchpoint": "checkout.payment",
         "occurred_at": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}Z", **(signal or {"csat": 1})}
    return b"c-1", orjson.dumps(e)


def test_a_record_read_again_sends_its_observation_again_a_second_copy_does_not() -> None:
    states: dict[str, Any] = {}

    def score(i: int, offset: int) -> Any:
        key, value = event(i)
        done = process_record(value, key, states.get, MODEL, 65536, 2e9, (0, offset))
        if done.state is not None:
            states["c-1"] = done.state
        return done

    first = score(1, 10)
    assert first.observation is not None and first.observation.position == (0, 10)
    assert first.observation.failed and first.observation.touchpoint == "checkout.payment"
    copy = score(1, 11)  # a producer's retry: the same event at the next offset
    assert copy.result is not None and copy.result.duplicate and copy.observation is None
    score(2, 12)
    # A crash: 10..12 read again. The record counted at 10 sends its observation again,
    # with the same position; the copy at 11 still does not.
    again = score(1, 10)
    assert again.result is not None and again.result.duplicate
    assert again.observation == first.observation
    assert score(1, 11).observation is None
    assert score(2, 12).observation is not None


def test_far_back_a_record_at_or_before_the_last_position_counts_as_read_again() -> None:
    """Older than the customer's recent moments: known by position only."""
    states: dict[str, Any] = {}
    for i in range(MODEL.recent_moments + 3):
        key, value = event(i, outcome="success")
        done = process_record(value, key, states.get, MODEL, 65536, 2e9, (0, 100 + i))
        states["c-1"] = done.state
    key, value = event(0, outcome="success")
    done = process_record(value, key, states.get, MODEL, 65536, 2e9, (0, 100))
    assert done.result is not None and done.result.duplicate
    assert done.observation is not None and done.observation.position == (0, 100)
