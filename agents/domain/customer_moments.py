"""One customer's state and what a new moment of truth does to it.

The state is a small JSON-ready dict (it is a table value, serialized on every
update), so it holds only what the rules need: the running score and its event
time, counters, the last few moments for context, and a bounded window of seen
event-id hashes so a retried or replayed event is counted once. For the failed
moments in that window it keeps their scores (``alerted``), so a replay after a
crash can re-send an alert that was lost with the same id and figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from agents.domain.quality import Quality, is_failed, moment_quality
from agents.domain.running_score import apply_moment

if TYPE_CHECKING:  # annotations only: model_config imports what imports this
    from agents.domain.model_config import ModelConfig

STATE_VERSION = 1

# Positions in a ``recent`` entry (a list, to keep the serialized state small); R_OFFSET
# (the input offset it was counted at) only when the event was read from Kafka.
R_EVENT_ID, R_AT, R_TOUCHPOINT, R_Q, R_BEFORE, R_AFTER, R_OFFSET = range(7)
# Position in an ``alerted`` entry ([event hash, score before, score after, rules version])
# of the rules version its alert was computed under (absent in states written before).
A_RULES = 3


class RejectedMoment(Exception):
    """A valid event the time policy refuses; ``reason`` is a machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class MomentResult:
    """What one event did: enough for alerts and metrics, nothing more."""

    quality: Quality
    score_before: float
    score_after: float
    failed: bool
    duplicate: bool
    late: bool
    context: list[list[Any]]  # the recent moments before this one, oldest first
    # the rules version it was scored under (None: a duplicate whose version is not kept)
    rules_version: str | None = None


POSITION = "pos"  # [input partition, offset] of the last event applied


def new_state() -> dict[str, Any]:
    return {"v": STATE_VERSION, "score": 0.0, "at": None, "moments": 0, "failures": 0,
            "recent": [], "seen": []}


def event_key(event_id: str) -> int:
    """A stable 63-bit hash of the event id: compact in the state, collisions ~1e-17."""
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "big") >> 1


def record_moment(
    state: dict[str, Any] | None,
    event: dict[str, Any],
    occurred_at: float,
    cfg: ModelConfig,
    now: float,
    position: tuple[int, int] | None = None,
) -> tuple[dict[str, Any], MomentResult]:

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
    eid = event["event_id"]
    key = event_key(eid)
    seen: list[int] = st["seen"]
    recent: list[list[Any]] = st["recent"]
    last = st.get(POSITION)
    # Also no later in event time than the customer's latest: a re-read event never is,
    # while new events on a re-created topic (offsets from 0 again) mostly are.
    read_again = (position is not None and last is not None and position[0] == last[0]
                  and position[1] <= last[1] and st["at"] is not None
                  and occurred_at <= st["at"])
    if key in seen or read_again:
        # Its failed-moment alert is re-sent as first computed: failed under the rules
        # version it was scored under (kept with it, ``A_RULES``), not under today's.
        kept = next((a for a in st.get("alerted", ()) if a[0] == key), None)
        version = kept[A_RULES] if kept is not None and len(kept) > A_RULES else None
        for i, entry in enumerate(recent):
            if entry[R_EVENT_ID] == eid:
                failed = (kept is not None if key in seen
                          else is_failed(entry[R_Q], cfg.quality))  # outside the window
                return st, MomentResult(q, entry[R_BEFORE], entry[R_AFTER], failed, True,
                                        False, recent[:i], version)
        if kept is not None:  # older than the recent moments: same alert, without context
            return st, MomentResult(q, kept[1], kept[2], True, True, False, [], version)
        return st, MomentResult(q, st["score"], st["score"], False, True, False, [])

    at = st["at"]
    if occurred_at > now + cfg.max_future_skew_s:
        raise RejectedMoment(
            "too_far_in_future", f"occurred_at is {occurred_at - now:.0f}s ahead of the clock"
        )
    if at is not None and occurred_at < at - cfg.max_lateness_s:
        raise RejectedMoment(
            "too_late", f"occurred_at is {at - occurred_at:.0f}s behind the customer's latest"
            f" event (limit {cfg.max_lateness_s:.0f}s)"
        )
    before = st["score"]
    weight = event.get("weight", 1.0)
    score, new_at = apply_moment(before, at, q.q, weight, occurred_at, cfg.score)
    failed = is_failed(q.q, cfg.quality)
    keep = cfg.recent_moments
    entry = [eid, occurred_at, event["touchpoint"], q.q, before, score]
    if position is not None:
        entry.append(position[1])
    new_recent = [*recent, entry]
    if len(new_recent) > keep:
        new_recent = new_recent[len(new_recent) - keep:] if keep else []
    new_seen = [*seen, key]
    if len(new_seen) > cfg.dedupe_window:
        new_seen = new_seen[len(new_seen) - cfg.dedupe_window:]
    alerted: list[list[Any]] = st.get("alerted", [])
    if alerted and alerted[0][0] not in new_seen:
        window = set(new_seen)
        alerted = [a for a in alerted if a[0] in window]
    if failed:
        # as in the alert, with the rules version it was computed under
        alerted = [*alerted, [key, round(before, 6), round(score, 6), cfg.rules_version]]
    new = {
        "v": STATE_VERSION,
        "score": score,
        "at": new_at,
        "moments": st["moments"] + 1,
        "failures": st["failures"] + (1 if failed else 0),
        "recent": new_recent,
        "seen": new_seen,
        "alerted": alerted,
    }
    if position is not None:
        new[POSITION] = [position[0], position[1]]
    elif last is not None:
        new[POSITION] = last
    return new, MomentResult(q, before, score, failed, False, at is not None and occurred_at < at,
                             recent, cfg.rules_version)


def counted_at(state: dict[str, Any] | None, event_id: str,
               position: tuple[int, int] | None) -> bool:
    """Whether a duplicate read at ``position`` is the record the event was counted at
    (read again after a crash), not a second copy of it (a producer's retry): its
    observation is then sent again. Known exactly for the customer's recent moments;
    further back, a record at or before the customer's last applied position is taken
    for one read again."""
    if state is None or position is None:
        return False
    last = state.get(POSITION)
    if last is None or last[0] != position[0]:
        return False
    for entry in state["recent"]:
        if entry[R_EVENT_ID] == event_id and len(entry) > R_OFFSET:
            return bool(entry[R_OFFSET] == position[1])
    return bool(position[1] <= last[1])
