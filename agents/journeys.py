"""Journey bookkeeping beside the scoring agent: the stream clock and the deadline index.

All three tables are partitioned like ``customer-state`` (each entry is written while the
agent handles a record of that input partition, or by the silence check's repair for a
partition this worker runs), so they move with their partition on a rebalance and are
restored from their changelogs:

* ``stream-clock``: per input partition its :class:`StreamClock` (latest event time,
  wall time of the last event), written at most once per :data:`CLOCK_STEP_S` of either clock.
* ``journey-deadlines``: per customer with open journeys a :class:`JourneyDeadline`, a
  lower bound of the earliest ``last event + timeout`` of their open journeys. It is
  written when a journey opens (if earlier than the entry) and removed when the last
  one closes; between the two it is only corrected by the silence check
  (:mod:`agents.silent_journeys`), so a journey's ordinary moments cost no write here.
* ``journey-due``: the same entries keyed by deadline, then the customer's keyed hash
  (:func:`agents.domain.journey_index.due_key`, :func:`agents.suppression.hashed`; the
  value holds the id), written and removed with them. The
  silence check reads each partition's entries in key order and stops at the first that
  is not due (:func:`due_checks`): its cost is what is due, not every customer with an
  open journey.

The two indexes are written one after the other, so a crash can leave them apart; each
way is repaired. A ``journey-due`` entry whose customer's ``journey-deadlines`` entry
says otherwise (stale) still makes the check look at the customer, which finds nothing
to drop and removes it (:func:`correct_deadline`). A ``journey-deadlines`` entry without
its ``journey-due`` entry is written again by :func:`restore_deadline` when the event is
read again, and by :func:`index_partitions` once per partition after each assignment,
which also indexes the entries of a store written before ``journey-due`` existed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from agents.domain.customer_state import CustomerState, earliest_deadline_of
from agents.domain.drop_off import KIND as DROP_OFF
from agents.domain.journey_index import (
    CLOCK_CODEC,
    DEADLINE_CODEC,
    DUE_CODEC,
    DueEntry,
    JourneyDeadline,
    StreamClock,
    due_key,
    due_key_ms,
    due_ms,
)
from agents.domain.journeys import DROPPED, JourneyChange, stream_watermark
from agents.domain.moment_processor import Output, Processed
from agents.suppression import hashed
from streams import metrics as m
from streams.app import app, settings
from streams.faust_ext.store_scan import partition_items
from streams.faust_ext.table_access import (
    codec_of,
    discard,
    store,
    store_at,
    stored,
    stored_at,
    stored_items,
    typed_table,
)

CLOCK_STEP_S = 1.0

stream_clock = typed_table(app.Table("stream-clock", default=None, key_type=str,
                                     value_type=bytes, partitions=settings.partitions),
                           CLOCK_CODEC)
journey_deadlines = typed_table(app.Table("journey-deadlines", default=None, key_type=str,
                                          value_type=bytes, partitions=settings.partitions),
                                DEADLINE_CODEC)
journey_due = typed_table(app.Table("journey-due", default=None, key_type=str,
                                    value_type=bytes, partitions=settings.partitions),
                          DUE_CODEC)

# This worker's view of stream-clock for the partitions it runs: read once from the
# table, then kept in step with every write. Cleared when partitions are revoked, so
# a partition that comes back is read from the table again.
_clock: dict[int, StreamClock] = {}
# The partitions whose journey-due index index_partitions has completed since they
# were assigned to this worker.
_indexed: set[int] = set()


@app.on_partitions_revoked.connect
async def _forget_clock(sender: Any, revoked: Any, **kwargs: Any) -> None:
    _clock.clear()
    _indexed.clear()


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


def _due_key(deadline: float, customer_id: str) -> str:
    return due_key(deadline, hashed(customer_id))


def _index(customer_id: str, partition: int, entry: JourneyDeadline | None,
           cur: JourneyDeadline | None) -> None:
    """Make ``entry`` the customer's entry of both indexes (None: no entry), ``cur``
    being its ``journey-deadlines`` entry now. The ``journey-due`` entry is written
    when missing even if ``cur`` is already ``entry`` (a write a crash lost)."""
    token = hashed(customer_id)
    if entry is None:
        if cur is not None:
            discard(journey_due, due_key(cur.deadline, token))
            discard(journey_deadlines, customer_id)
        return
    key = due_key(entry.deadline, token)
    if cur is not None and due_key(cur.deadline, token) != key:
        discard(journey_due, due_key(cur.deadline, token))
    due = DueEntry(customer_id, entry.deadline, entry.partition)
    if cur != entry:
        store(journey_deadlines, customer_id, entry)
        store(journey_due, key, due)
    elif stored(journey_due, key) is None:
        store(journey_due, key, due)


def keep_deadline(customer_id: str, partition: int, change: JourneyChange) -> None:
    """Keep the index entry a lower bound of the customer's earliest deadline."""
    if change.open_count == 0:
        if change.had_open:
            _index(customer_id, partition, None, stored(journey_deadlines, customer_id))
    elif change.opened and change.earliest_deadline is not None:
        cur = stored(journey_deadlines, customer_id)
        if cur is None or change.earliest_deadline < cur.deadline:
            _index(customer_id, partition,
                   JourneyDeadline(change.earliest_deadline, partition), cur)


def correct_deadline(customer_id: str, partition: int, change: JourneyChange,
                     checked_deadline: float | None = None) -> None:
    """After a silence check: the entry is the customer's earliest deadline, or none. The
    ``journey-due`` entry that made the check (its deadline ``checked_deadline``) goes
    if it is no longer the customer's."""
    entry = None
    if change.open_count and change.earliest_deadline is not None:
        entry = JourneyDeadline(change.earliest_deadline, partition)
    _index(customer_id, partition, entry, stored(journey_deadlines, customer_id))
    if checked_deadline is not None and (
            entry is None or due_ms(checked_deadline) != due_ms(entry.deadline)):
        discard(journey_due, _due_key(checked_deadline, customer_id))


def _entries(table: Any, partition: int) -> Iterator[tuple[str, Any]]:
    """The decoded (key, value) entries of one partition of an index table, in key order:
    lazily from RocksDB, so a reader that stops early reads no further; sorted for other
    stores (``memory://``, tests: every partition in one store, told apart by the
    value's partition)."""
    raw = partition_items(table, partition)
    if raw is None:
        yield from sorted((k, v) for k, v in stored_items(table) if v.partition == partition)
        return
    decode = codec_of(table).decode
    for k, v in raw:
        yield orjson.loads(k), decode(v)


def _due_in(partition: int, mark: float) -> list[DueEntry]:
    """The ``journey-due`` entries of ``partition`` due at ``mark``, read no further than
    the first key past it."""
    limit = due_ms(mark)
    found = []
    for key, entry in _entries(journey_due, partition):
        if due_key_ms(key) > limit:
            break
        found.append(entry)
    return found


def due_checks(partitions: Iterable[int], now: float, idle_advance_s: float
               ) -> list[tuple[str, int, float, float]]:
    """(customer, partition, watermark, the entry's deadline) for every ``journey-due``
    entry of ``partitions`` whose deadline has passed on its partition's event-time
    clock."""
    due = []
    for p in partitions:
        c = stored(stream_clock, str(p))
        if c is None:
            continue
        mark = stream_watermark(c.event_time, c.wall_time, now, idle_advance_s)
        for entry in _due_in(p, mark):
            if entry.deadline <= mark:
                due.append((entry.customer_id, p, mark, entry.deadline))
    return due


def index_partitions(partitions: Iterable[int]) -> int:
    """For each of ``partitions`` not done since its assignment: the ``journey-due`` entry
    of every ``journey-deadlines`` entry that lacks one (a store written before the index
    existed, a write a crash lost). One pass over the partition's entries per assignment,
    a lookup each; the number of entries written."""
    written = 0
    for p in partitions:
        if p in _indexed:
            continue
        for customer_id, entry in _entries(journey_deadlines, p):
            key = _due_key(entry.deadline, customer_id)
            if stored_at(journey_due, p, key) is None:
                store_at(journey_due, p, key, DueEntry(customer_id, entry.deadline, p))
                written += 1
        _indexed.add(p)
    return written


def due_keys_of(customer_id: str, partition: int) -> list[str]:
    """Every ``journey-due`` key of the customer in ``partition``, whatever hash key wrote
    it (an erasure: one pass over the partition's entries)."""
    raw = partition_items(journey_due, partition)
    if raw is None:  # memory:// (tests)
        return [k for k, v in stored_items(journey_due)
                if v.partition == partition and v.customer_id == customer_id]
    decode = codec_of(journey_due).decode
    needle = customer_id.encode()  # MessagePack keeps the id's UTF-8 as it is
    return [orjson.loads(k) for k, v in raw
            if needle in v and decode(v).customer_id == customer_id]


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
    """For an event read again: the index entries of the customer's open journeys, if
    missing or later than their earliest deadline. After a crash the customer's state
    may have reached its changelog while this table's write did not; the event, now a
    duplicate, opens nothing, and without the entry the silence check would never look
    at the customer (the drop-off of a journey gone silent would be lost)."""
    deadline = earliest_deadline_of(state, settings.journey_timeout_s)
    if deadline is None:
        return
    cur = stored(journey_deadlines, customer_id)
    if cur is None or deadline < cur.deadline:
        _index(customer_id, partition, JourneyDeadline(deadline, partition), cur)
    else:
        _index(customer_id, partition, cur, cur)  # its journey-due entry, if lost


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
