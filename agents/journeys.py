"""Journey bookkeeping beside the scoring agent: the stream clock and the deadline index.

Both are tables partitioned like ``customer-state`` (each entry is written while the
agent handles a record of that input partition), so they move with their partition
on a rebalance and are restored from their changelogs:

* ``stream-clock``: per input partition its :class:`StreamClock` (latest event time,
  wall time of the last event), written at most once per :data:`CLOCK_STEP_S` of either clock.
* ``journey-deadlines``: per customer with open journeys a :class:`JourneyDeadline`, a
  lower bound of the earliest ``last event + timeout`` of their open journeys. It is
  written when a journey opens (if earlier than the entry) and removed when the last
  one closes; between the two it is only corrected by the silence check
  (:mod:`agents.silent_journeys`), so a journey's ordinary moments cost no write here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agents.domain.customer_state import CustomerState, earliest_deadline_of
from agents.domain.drop_off import KIND as DROP_OFF
from agents.domain.journey_index import (
    CLOCK_CODEC,
    DEADLINE_CODEC,
    JourneyDeadline,
    StreamClock,
)
from agents.domain.journeys import DROPPED, JourneyChange, stream_watermark
from agents.domain.moment_processor import Output, Processed
from streams import metrics as m
from streams.app import app, settings
from streams.faust_ext.table_access import discard, store, stored, stored_items, typed_table

CLOCK_STEP_S = 1.0

stream_clock = typed_table(app.Table("stream-clock", default=None, key_type=str,
                                     value_type=bytes, partitions=settings.partitions),
                           CLOCK_CODEC)
journey_deadlines = typed_table(app.Table("journey-deadlines", default=None, key_type=str,
                                          value_type=bytes, partitions=settings.partitions),
                                DEADLINE_CODEC)

# This worker's view of stream-clock for the partitions it runs: read once from the
# table, then kept in step with every write. Cleared when partitions are revoked, so
# a partition that comes back is read from the table again.
_clock: dict[int, StreamClock] = {}


@app.on_partitions_revoked.connect
async def _forget_clock(sender: Any, revoked: Any, **kwargs: Any) -> None:
    _clock.clear()


def advance_clock(partition: int, occurred_at: float, now: float) -> None:
    """Move the partition's event-time clock (never past the wall clock, never back)."""
    c = _clock.get(partition)
    if c is None:
        c = stored(stream_clock, str(partition)) or StreamClock(
            occurred_at if occurred_at < now else now, 0.0)
    t = occurred_at if occurred_at < now else now
    if t >= c.event_time + CLOCK_STEP_S or now >= c.wall_time + CLOCK_STEP_S:
        c = StreamClock(t if t > c.event_time else c.event_time, now)
        store(stream_clock, str(partition), c)
    _clock[partition] = c


def keep_deadline(customer_id: str, partition: int, change: JourneyChange) -> None:
    """Keep the index entry a lower bound of the customer's earliest deadline."""
    if change.open_count == 0:
        if change.had_open:
            discard(journey_deadlines, customer_id)
    elif change.opened and change.earliest_deadline is not None:
        cur = stored(journey_deadlines, customer_id)
        if cur is None or change.earliest_deadline < cur.deadline:
            store(journey_deadlines, customer_id,
                  JourneyDeadline(change.earliest_deadline, partition))


def correct_deadline(customer_id: str, partition: int, change: JourneyChange) -> None:
    """After a silence check: the entry is the customer's earliest deadline, or none."""
    if change.open_count == 0 or change.earliest_deadline is None:
        discard(journey_deadlines, customer_id)
    else:
        entry = JourneyDeadline(change.earliest_deadline, partition)
        if stored(journey_deadlines, customer_id) != entry:
            store(journey_deadlines, customer_id, entry)


def due_checks(partitions: Iterable[int], now: float, idle_advance_s: float
               ) -> list[tuple[str, int, float]]:
    """(customer, partition, watermark) for every indexed customer of ``partitions`` whose
    deadline has passed on its partition's event-time clock."""
    marks: dict[int, float] = {}
    for p in partitions:
        c = stored(stream_clock, str(p))
        if c is not None:
            marks[p] = stream_watermark(c.event_time, c.wall_time, now, idle_advance_s)
    if not marks:
        return []
    due = []
    for customer_id, entry in stored_items(journey_deadlines):
        mark = marks.get(entry.partition)
        if mark is not None and entry.deadline <= mark:
            due.append((customer_id, entry.partition, mark))
    return due


def count_journeys(change: JourneyChange, outputs: list[Output],
                   tally: m.Tally | None = None) -> None:
    """The journey metrics of one change; with ``tally``, added to it (applied by its owner)."""
    if tally is None:
        tally = m.Tally()
        count_journeys(change, outputs, tally)
        tally.apply()
        return
    if change.opened:
        tally.inc(m.child(m.journeys, "opened"))
    for status in change.closed:
        tally.inc(m.child(m.journeys, status))
    if DROPPED not in change.closed:
        return  # drop-offs re-sent by a check read again were counted the first time
    for out in outputs:
        if out.kind == DROP_OFF:
            for tp, share in out.value["blame_by_touchpoint"].items():
                tally.inc(m.child(m.dropoff_blame, tp), share)


def restore_deadline(customer_id: str, partition: int, state: CustomerState) -> None:
    """For an event read again: the index entry of the customer's open journeys, if it is
    missing or later than their earliest deadline. After a crash the customer's state
    may have reached its changelog while this table's write did not; the event, now a
    duplicate, opens nothing, and without the entry the silence check would never look
    at the customer (the drop-off of a journey gone silent would be lost)."""
    deadline = earliest_deadline_of(state, settings.journey_timeout_s)
    if deadline is None:
        return
    cur = stored(journey_deadlines, customer_id)
    if cur is None or deadline < cur.deadline:
        store(journey_deadlines, customer_id, JourneyDeadline(deadline, partition))


def note_record(partition: int, done: Processed, now: float,
                tally: m.Tally | None = None) -> None:
    """After a counted event: the clock, the deadline index and the journey metrics;
    after a duplicate, the index entry (:func:`restore_deadline`)."""
    if done.occurred_at is None:
        result = done.result
        if (result is not None and result.duplicate and done.customer_id is not None
                and done.state is not None):
            restore_deadline(done.customer_id, partition, done.state)
        return
    advance_clock(partition, done.occurred_at, now)
    change = done.journeys
    if change is not None and done.customer_id is not None:
        keep_deadline(done.customer_id, partition, change)
        count_journeys(change, done.outputs, tally)
