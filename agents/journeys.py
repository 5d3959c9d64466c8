"""Journey bookkeeping beside the scoring agent: the stream clock and the deadline index.

Both are tables partitioned like ``customer-state`` (each entry is written while the
agent handles a record of that input partition), so they move with their partition
on a rebalance and are restored from their changelogs:

* ``stream-clock``: per input partition ``[latest event time, wall time of the last
  event]``, written at most once per :data:`CLOCK_STEP_S` of either clock.
* ``journey-deadlines``: per customer with open journeys ``[deadline, partition]``, a
  lower bound of the earliest ``last event + timeout`` of their open journeys. It is
  written when a journey opens (if earlier than the entry) and removed when the last
  one closes; between the two it is only corrected by the silence check
  (:mod:`agents.silent_journeys`), so a journey's ordinary moments cost no write here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agents.domain.drop_off import KIND as DROP_OFF
from agents.domain.journeys import DROPPED, JourneyChange, earliest_deadline_of, stream_watermark
from agents.domain.moment_processor import Output, Processed
from streams import metrics as m
from streams.app import app, settings
from streams.faust_ext.table_access import discard, store, stored

CLOCK_STEP_S = 1.0

stream_clock = app.Table("stream-clock", default=None, key_type=str,
                         partitions=settings.partitions)
journey_deadlines = app.Table("journey-deadlines", default=None, key_type=str,
                              partitions=settings.partitions)

# This worker's view of stream-clock for the partitions it runs: read once from the
# table, then kept in step with every write. Cleared when partitions are revoked, so
# a partition that comes back is read from the table again.
_clock: dict[int, list[float]] = {}


@app.on_partitions_revoked.connect
async def _forget_clock(sender: Any, revoked: Any, **kwargs: Any) -> None:
    _clock.clear()


def advance_clock(partition: int, occurred_at: float, now: float) -> None:
    """Move the partition's event-time clock (never past the wall clock, never back)."""
    c = _clock.get(partition)
    if c is None:
        c = stored(stream_clock, str(partition)) or [occurred_at if occurred_at < now else now, 0.0]
    t = occurred_at if occurred_at < now else now
    if t >= c[0] + CLOCK_STEP_S or now >= c[1] + CLOCK_STEP_S:
        c = [t if t > c[0] else c[0], now]
        store(stream_clock, str(partition), c)
    _clock[partition] = c


def keep_deadline(customer_id: str, partition: int, change: JourneyChange) -> None:
    """Keep the index entry a lower bound of the customer's earliest deadline."""
    if change.open_count == 0:
        if change.had_open:
            discard(journey_deadlines, customer_id)
    elif change.opened and change.earliest_deadline is not None:
        cur = stored(journey_deadlines, customer_id)
        if cur is None or change.earliest_deadline < cur[0]:
            store(journey_deadlines, customer_id, [change.earliest_deadline, partition])


def correct_deadline(customer_id: str, partition: int, change: JourneyChange) -> None:
    """After a silence check: the entry is the customer's earliest deadline, or none."""
    if change.open_count == 0 or change.earliest_deadline is None:
        discard(journey_deadlines, customer_id)
    elif stored(journey_deadlines, customer_id) != [change.earliest_deadline, partition]:
        store(journey_deadlines, customer_id, [change.earliest_deadline, partition])


def due_checks(partitions: Iterable[int], now: float, idle_advance_s: float
               ) -> list[tuple[str, int, float]]:
    """(customer, partition, watermark) for every indexed customer of ``partitions`` whose
    deadline has passed on its partition's event-time clock."""
    marks: dict[int, float] = {}
    for p in partitions:
        c = stream_clock.get(str(p))
        if c is not None:
            marks[p] = stream_watermark(c[0], c[1], now, idle_advance_s)
    if not marks:
        return []
    due = []
    for customer_id, (deadline, p) in journey_deadlines.items():
        mark = marks.get(p)
        if mark is not None and deadline <= mark:
            due.append((customer_id, p, mark))
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


def restore_deadline(customer_id: str, partition: int, state: dict[str, Any]) -> None:
    """For an event read again: the index entry of the customer's open journeys, if it is
    missing or later than their earliest deadline. After a crash the customer's state
    may have reached its changelog while this table's write did not; the event, now a
    duplicate, opens nothing, and without the entry the silence check would never look
    at the customer (the drop-off of a journey gone silent would be lost)."""
    deadline = earliest_deadline_of(state, settings.journey_timeout_s)
    if deadline is None:
        return
    cur = stored(journey_deadlines, customer_id)
    if cur is None or deadline < cur[0]:
        store(journey_deadlines, customer_id, [deadline, partition])


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
