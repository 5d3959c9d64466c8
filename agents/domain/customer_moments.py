"""One customer's state and what a new moment of truth does to it.

The state (:class:`agents.domain.customer_state.CustomerState`) is a table value,
encoded on every update, so it holds only what the rules need: the running score and
its event time, counters, the last few moments for context, and a bounded window of seen
event-id hashes so a retried or replayed event is counted once. For the failed moments
in that window it keeps their scores (``alerted``), so a replay after a crash can re-send
an alert that was lost with the same id and figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from msgspec import Struct

from agents.domain.customer_state import (
    AlertedMoment,
    CustomerState,
    Position,
    RecentMoment,
    event_key,
)
from agents.domain.quality import Quality, is_failed, moment_quality
from agents.domain.running_score import apply_moment

if TYPE_CHECKING:  # annotations only: model_config imports what imports this
    from agents.domain.model_config import ModelConfig
    from schemas.touchpoint_event import TouchpointEvent


class RejectedMoment(Exception):
    """A valid event the time policy refuses; ``reason`` is a machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class MomentResult(Struct, frozen=True):
    """What one event did: enough for alerts and metrics, nothing more."""

    quality: Quality
    score_before: float
    score_after: float
    failed: bool
    duplicate: bool
    late: bool
    context: list[RecentMoment]  # the recent moments before this one, oldest first
    # the rules version it was scored under (None: a duplicate whose version is not kept)
    rules_version: str | None = None


def new_state() -> CustomerState:
    return CustomerState()


def record_moment(
    state: CustomerState | None,
    event: TouchpointEvent,
    occurred_at: float,
    cfg: ModelConfig,
    now: float,
    position: tuple[int, int] | None = None,
) -> tuple[CustomerState, MomentResult]:

    """Apply one validated event; return the new state and what happened.

    A duplicate (same event id within the dedupe window) leaves the state as it was
    and reports the original outcome of a failed moment still in that window, so the
    caller can re-send the same alert (same id) that a crash may have lost.
    ``position`` is where the event was read (input partition, offset): the state keeps
    the last one applied, and an event read again from at or before it (after a crash,
    the records since the last offset commit) and not later in event time than the
    customer's latest is a duplicate however far back it lies, so counting once does
    not depend on the dedupe window for those.
    Raises :class:`RejectedMoment` for events outside the time policy.
    """
    st = new_state() if state is None else state
    q = moment_quality(event, cfg.quality)
    eid = event.event_id
    key = event_key(eid)
    seen = st.seen
    recent = st.recent
    last = st.position
    # Also no later in event time than the customer's latest: a re-read event never is,
    # while new events on a re-created topic (offsets from 0 again) mostly are.
    read_again = (position is not None and last is not None
                  and position[0] == last.partition and position[1] <= last.offset
                  and st.at is not None and occurred_at <= st.at)
    if key in seen or read_again:
        # Its failed-moment alert is re-sent as first computed: failed under the rules
        # version it was scored under (kept with it), not under today's.
        kept = next((a for a in st.alerted if a.event_key == key), None)
        version = kept.rules_version if kept is not None else None
        for i, entry in enumerate(recent):
            if entry.event_id == eid:
                failed = (kept is not None if key in seen
                          else is_failed(entry.quality, cfg.quality))  # outside the window
                return st, MomentResult(q, entry.score_before, st.score_after(i), failed,
                                        True, False, recent[:i], version)
        if kept is not None:  # older than the recent moments: same alert, without context
            return st, MomentResult(q, kept.score_before, kept.score_after, True, True,
                                    False, [], version)
        return st, MomentResult(q, st.score, st.score, False, True, False, [])

    at = st.at
    if occurred_at > now + cfg.max_future_skew_s:
        raise RejectedMoment(
            "too_far_in_future", f"occurred_at is {occurred_at - now:.0f}s ahead of the clock"
        )
    if at is not None and occurred_at < at - cfg.max_lateness_s:
        raise RejectedMoment(
            "too_late", f"occurred_at is {at - occurred_at:.0f}s behind the customer's latest"
            f" event (limit {cfg.max_lateness_s:.0f}s)"
        )
    before = st.score
    weight = event.weight_or_default
    score, new_at = apply_moment(before, at, q.q, weight, occurred_at, cfg.score)
    failed = is_failed(q.q, cfg.quality)
    keep = cfg.recent_moments
    new_recent = [*recent, RecentMoment(eid, occurred_at, event.touchpoint, q.q, before,
                                        None if position is None else position[1])]
    if len(new_recent) > keep:
        new_recent = new_recent[len(new_recent) - keep:] if keep else []
    new_seen = [*seen, key]
    if len(new_seen) > cfg.dedupe_window:
        new_seen = new_seen[len(new_seen) - cfg.dedupe_window:]
    alerted = st.alerted
    if alerted and alerted[0].event_key not in new_seen:
        window = set(new_seen)
        alerted = [a for a in alerted if a.event_key in window]
    if failed:
        # as in the alert, with the rules version it was computed under
        alerted = [*alerted, AlertedMoment(key, round(before, 6), round(score, 6),
                                           cfg.rules_version)]
    new = CustomerState(
        score=score,
        at=new_at,
        moments=st.moments + 1,
        failures=st.failures + (1 if failed else 0),
        recent=new_recent,
        seen=new_seen,
        alerted=alerted,
        position=Position(position[0], position[1]) if position is not None else last,
    )
    return new, MomentResult(q, before, score, failed, False, at is not None and occurred_at < at,
                             recent, cfg.rules_version)


def counted_at(state: CustomerState | None, event_id: str,
               position: tuple[int, int] | None) -> bool:
    """Whether a duplicate read at ``position`` is the record the event was counted at
    (read again after a crash), not a second copy of it (a producer's retry): its
    observation is then sent again. Known exactly for the customer's recent moments;
    further back, a record at or before the customer's last applied position is taken
    for one read again."""
    if state is None or position is None:
        return False
    last = state.position
    if last is None or last.partition != position[0]:
        return False
    for entry in state.recent:
        if entry.event_id == event_id and entry.offset is not None:
            return entry.offset == position[1]
    return position[1] <= last.offset
