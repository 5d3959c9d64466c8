"""Batch delivery of the input topic: one event per partition and fetch, and commits that
never pass a record the agent has not handled (the at-least-once promise)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict, deque
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from intervaltree import IntervalTree

from streams.faust_ext.batch_delivery import (
    BatchingConsumer,
    BatchMessage,
    batch_handled,
    records_of,
    timestamp_s,
)

TP0 = TP("mot.touchpoints", 0)


def record(offset: int, partition: int = 0) -> Any:
    """The fields of an aiokafka ``ConsumerRecord`` that the path reads."""
    return SimpleNamespace(topic=TP0.topic, partition=partition, offset=offset,
                           timestamp=1_700_000_000_000 + offset, timestamp_type=0,
                           key=b"c-%d" % offset, value=b"{}", serialized_value_size=2)


def consumer() -> Any:
    """A ``BatchingConsumer`` with only the bookkeeping Faust's commit logic uses."""
    c: Any = object.__new__(BatchingConsumer)
    c.__dict__.update(
        _read_offset=defaultdict(lambda: None), _committed_offset=defaultdict(lambda: None),
        _acked=defaultdict(list), _acked_index=defaultdict(set), _gap=defaultdict(IntervalTree),
        _n_acked=0, _unacked_messages=set(), _waiting_for_ack=None,
        _batches=defaultdict(deque), _read_from={}, _revoked_committed={},
        _buffered_partitions=set(), _unsure=set(), _sought=set(), _read_again_at={},
        _seeks=defaultdict(int), _awaiting_seek=set(),
        app=SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True),
                            consumer_generation_id=1, batched_topics=frozenset({TP0.topic})),
        suspend_flow=asyncio.Event(), delivered=[], _commit_every=None, _commit_fut=None,
    )
    c.app.consumer = c

    async def wait_first(*coros: Any) -> None:
        await coros[0]
        for other in coros[1:]:
            other.close()

    c.wait_first = wait_first
    return c


async def deliver(c: Any, offsets: range | list[int], generation: int = 1) -> BatchMessage:
    async def callback(message: BatchMessage) -> None:
        c.delivered.append(message)

    await c._deliver_batch(TP0, [record(o) for o in offsets], generation, callback, None)
    return c.delivered[-1]


def commit_point(c: Any) -> int | None:
    """What the next commit would write for the partition (and remember it, as Faust does)."""
    offset = c._new_offset(TP0)
    if offset is not None:
        c._committed_offset[TP0] = offset
    return offset


async def ack(c: Any, message: BatchMessage, handled: bool = True) -> None:
    """The agent's end of a batch (``batch_handled``), then the stream's ack of it: the
    message's own (last) offset; a batch skipped at a rebalance is acked unhandled."""
    if handled:
        batch_handled(SimpleNamespace(message=message))
    c.ack(message)


async def test_a_fetched_run_arrives_as_one_event_carrying_its_records_in_order() -> None:
    c = consumer()
    m = await deliver(c, range(0, 10))
    assert len(c.delivered) == 1
    assert [r.offset for r in records_of(SimpleNamespace(message=m))] == list(range(10))
    assert (m.tp, m.offset, m.first_offset) == (TP0, 9, 0)
    assert m.timestamp == timestamp_s(record(9))


async def test_nothing_is_committed_before_the_batch_is_acked() -> None:
    c = consumer()
    await deliver(c, range(0, 10))
    assert commit_point(c) is None


async def test_acking_the_batch_commits_past_all_its_records() -> None:
    c = consumer()
    await ack(c, await deliver(c, range(0, 10)))
    assert commit_point(c) == 10


async def test_a_delivered_but_unhandled_batch_holds_the_commit_back() -> None:
    c = consumer()
    first = await deliver(c, range(0, 10))
    await deliver(c, range(10, 25))  # delivered, still being handled when the commit runs
    await ack(c, first)
    assert commit_point(c) == 10
    await ack(c, c.delivered[-1])
    assert commit_point(c) == 25


async def test_records_delivered_before_are_not_delivered_again() -> None:
    c = consumer()
    await ack(c, await deliver(c, range(0, 10)))
    m = await deliver(c, range(5, 15))  # the fetcher hands back records it had already read
    assert [r.offset for r in m.value] == list(range(10, 15))
    c.delivered.clear()
    await c._deliver_batch(TP0, [record(o) for o in range(3, 9)], 1, None, None)
    assert c.delivered == []


async def test_offsets_the_broker_skipped_before_a_batch_are_committed_with_it() -> None:
    """10 to 13 are transaction markers or compacted away: the first fetch past them is
    read again from 10 (the offsets could have been fetched and lost on the way), and
    once the records read again start at 14 too, the batch stands for 10 on."""
    c = seekable(consumer())
    await ack(c, await deliver(c, range(0, 10)))
    assert commit_point(c) == 10
    count = len(c.delivered)
    await c._deliver_batch(TP0, [record(o) for o in (14, 15, 16)], 1, None, None)
    assert len(c.delivered) == count and c.seeks == [10]
    m = await deliver(c, [14, 15, 16])
    assert m.first_offset == 10
    await ack(c, m)
    assert commit_point(c) == 17


async def test_a_batch_fetched_before_a_rebalance_is_read_again_not_counted() -> None:
    c = consumer()
    await ack(c, await deliver(c, range(0, 10)))
    assert commit_point(c) == 10
    stale = await deliver(c, range(10, 20))
    c.app.consumer_generation_id = 2  # a rebalance: the stream skips (and acks) it
    await ack(c, stale, handled=False)
    assert commit_point(c) is None  # offsets 10..18 were never handled
    c._read_offset[TP0] = 10  # the seek back to the committed offset
    await ack(c, await deliver(c, range(10, 20), generation=2))
    assert commit_point(c) == 20


async def test_a_batch_handled_before_a_rebalance_still_counts() -> None:
    """The final commit at a rebalance runs under the new generation."""
    c = consumer()
    m = await deliver(c, range(0, 10))
    c.app.consumer_generation_id = 2
    await ack(c, m)
    assert commit_point(c) == 10


def test_a_plain_faust_message_is_its_own_batch() -> None:
    message = SimpleNamespace(topic="t", partition=0, offset=3, timestamp=12.5)
    event = SimpleNamespace(message=message)
    assert list(records_of(event)) == [message]


async def test_a_handled_batch_counts_before_the_stream_acks_it() -> None:
    c = consumer()
    m = await deliver(c, range(0, 10))
    batch_handled(SimpleNamespace(message=m))  # then a commit runs before the stream acks
    assert commit_point(c) == 10
    c.ack(m)  # the stream's ack afterwards changes nothing
    assert commit_point(c) is None


async def test_a_batch_delivered_across_a_rebalance_leaves_the_read_offset_to_the_seek() -> None:
    """Faust seeks back to the committed offset at a rebalance; a batch fetched before it
    and delivered after must not move the read offset past records not yet handled."""
    c = consumer()

    async def rebalance_meanwhile(message: BatchMessage) -> None:
        c.app.consumer_generation_id = 2
        c._read_offset[TP0] = 0  # the seek to the committed offset

    await c._deliver_batch(TP0, [record(o) for o in range(0, 10)], 1, rebalance_meanwhile,
                           None)
    assert c._read_offset[TP0] == 0
    m = await deliver(c, range(0, 10), generation=2)  # read again, all of it
    assert [r.offset for r in m.value] == list(range(10))


class DrainProbe(BatchingConsumer):
    """The drain loop's surroundings: a scripted fetch, an open flow, no Kafka."""

    flow_active = True
    should_stop = False


def drain_probe(fetches: list[Any], batched: bool) -> Any:
    """A consumer whose ``_wait_next_records`` plays ``fetches`` (each a callable run
    while the fetch waits, and the records it returns), then stops."""
    c = consumer()
    c.__class__ = DrainProbe
    stopped = asyncio.Event()
    c.__dict__.update(
        _stopped=stopped, _buffered_partitions=set(),
        diag=SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None),
        transport=SimpleNamespace(app=c.app), consumer_stopped_errors=(),
        highwater=lambda tp: 0,
        _to_message=lambda tp, r: SimpleNamespace(tp=tp, offset=r.offset, value=[r]),
    )
    c.app.batched_topics = frozenset({TP0.topic}) if batched else frozenset()
    gate = asyncio.Event()
    gate.set()
    c.app.tables = SimpleNamespace(recovery=SimpleNamespace(streams_open=gate),
                                   changelog_topics={"mot-customer-state-changelog"})
    c.app.monitor = SimpleNamespace(track_tp_end_offset=lambda tp, offset: None)
    script = fetches

    async def wait_next_records(timeout: float) -> tuple[Any, Any]:
        if not script:
            stopped.set()
            return None, None
        during, offsets = script.pop(0)
        pending = during()
        if pending is not None:
            await pending
        return {TP0: [record(o) for o in offsets]}, {TP0}

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(0)

    async def callback(message: Any) -> None:
        c.delivered.extend(r.offset for r in message.value)

    c.__dict__.update(_wait_next_records=wait_next_records, sleep=sleep, callback=callback)
    return c


async def test_records_fetched_after_a_rebalance_completed_during_the_fetch_are_delivered() -> None:
    """The fetch waits while a rebalance assigns the partition and seeks it to the committed
    offset (5); the records it then returns are the first ones of the new generation. None
    may be dropped: nothing would seek back to them, and the next record would commit them
    as a gap (the lost input of a worker that took over a killed worker's partitions)."""
    for batched in (False, True):
        fetches: list[Any] = []
        c = drain_probe(fetches, batched)

        def rebalance(c: Any = c) -> None:
            c.app.consumer_generation_id = 2
            c._read_offset[TP0] = 5

        fetches += [(rebalance, [5, 6]), (lambda: None, [7, 8])]
        c._read_offset[TP0] = 3  # read up to 3 before the rebalance
        await c._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
        assert c.delivered == [5, 6, 7, 8], f"batched={batched}"
        assert not c._gap[TP0], f"batched={batched}: no offset acked without delivery"


async def test_records_fetched_while_the_recovery_hands_partitions_back_wait_for_it() -> None:
    """Faust clears the agents' queues at the end of a recovery, after resuming and seeking
    the stream partitions; what a fetch returns meanwhile is held, not delivered into a
    queue about to be cleared (streams/faust_ext/recovery_gate.py)."""
    for batched in (False, True):
        fetches: list[Any] = []
        c = drain_probe(fetches, batched)
        gate = c.app.tables.recovery.streams_open
        delivered_while_closed: list[int] = []

        def recovery_completing(c: Any = c, gate: asyncio.Event = gate,
                                seen: list[int] = delivered_while_closed) -> None:
            gate.clear()

            def done() -> None:  # on_recovery_completed returns: queues cleared, flow on
                seen.extend(c.delivered)
                gate.set()

            asyncio.get_running_loop().call_later(0.05, done)

        fetches += [(recovery_completing, [0, 1]), (lambda: None, [2])]
        await c._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
        await asyncio.sleep(0.1)
        assert delivered_while_closed == [], f"batched={batched}"
        assert c.delivered == [0, 1, 2], f"batched={batched}"


async def test_records_held_across_a_new_rebalance_are_left_to_its_seek() -> None:
    fetches: list[Any] = []
    c = drain_probe(fetches, batched=True)
    gate = c.app.tables.recovery.streams_open

    def rebalanced_while_held(c: Any = c) -> None:
        gate.clear()

        def done() -> None:  # a new rebalance began, and its recovery seeks back to 0
            c.app.consumer_generation_id = 2
            c._read_offset[TP0] = 0
            gate.set()

        asyncio.get_running_loop().call_later(0.05, done)

    fetches += [(rebalanced_while_held, [0, 1]), (lambda: asyncio.sleep(0.1), [0, 1, 2])]
    c._read_offset[TP0] = 0
    await c._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
    assert c.delivered == [0, 1, 2]  # once each: the stale fetch was not delivered


async def test_the_gate_is_closed_while_faust_hands_partitions_back_and_opens_after(
    monkeypatch: Any,
) -> None:
    from faust.tables.recovery import Recovery

    from streams.faust_ext.recovery_gate import GatedRecovery

    seen: list[bool] = []

    async def handing_back(self: Any, generation_id: int = 0) -> None:
        seen.append(self.streams_open.is_set())
        if generation_id == 13:
            raise RuntimeError("rebalance again")

    monkeypatch.setattr(Recovery, "on_recovery_completed", handing_back)
    r: Any = object.__new__(GatedRecovery)
    r.streams_open = asyncio.Event()
    r.streams_open.set()
    await r.on_recovery_completed(2)
    assert seen == [False] and r.streams_open.is_set()
    with pytest.raises(RuntimeError):
        await r.on_recovery_completed(13)
    assert seen == [False, False] and r.streams_open.is_set()


def revocable(c: Any) -> Any:
    """What Faust's ``Consumer.on_partitions_revoked`` touches besides the bookkeeping."""
    c.__dict__.update(
        _active_partitions=None, _paused_partitions=set(),
        diag=SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None))
    c.app._start_span_from_rebalancing = lambda name: contextlib.nullcontext()
    return c


async def revoke(c: Any, during: Any) -> int | None:
    """A revocation of TP0 as Faust runs it: its bookkeeping dropped, then the app's part
    (``during``: what the streams do while the flow is suspended), then the commit that
    ends it (``wait_empty``). What that commit writes for TP0."""
    written: list[int | None] = []

    async def app_part(revoked: Any) -> None:
        await during()
        written.append(commit_point(c))

    c._on_partitions_revoked = app_part
    await c.on_partitions_revoked({TP0})
    return written[0]


class PlainMessage(SimpleNamespace):
    __hash__ = object.__hash__  # Faust keeps unacked messages in a (weak) set


def skipped_message(offset: int) -> Any:
    """A per-message event a stream took from its queue during a rebalance and skipped:
    acked without being processed, so never tracked."""
    return PlainMessage(topic=TP0.topic, tp=TP0, offset=offset, acked=False, tracked=False)


async def test_a_batch_skipped_at_the_first_rebalance_is_not_committed_over() -> None:
    """No commit yet (a run's start): the first batch, skipped by the stream at the
    revocation, is acked unhandled; the revocation's commit must not pass its records."""
    c = revocable(consumer())
    skipped = await deliver(c, range(0, 94))

    async def stream_skips() -> None:
        await ack(c, skipped, handled=False)

    assert await revoke(c, stream_skips) is None


async def test_a_batch_skipped_at_a_revocation_is_not_committed_over_the_committed_offset() -> None:
    c = revocable(consumer())
    await ack(c, await deliver(c, range(0, 14)))
    assert commit_point(c) == 14
    skipped = await deliver(c, range(14, 37))

    async def stream_skips() -> None:
        await ack(c, skipped, handled=False)

    assert await revoke(c, stream_skips) is None  # 14..36 never handled


async def test_a_batch_finished_during_a_revocation_is_committed() -> None:
    """The agent finishes the batch it was handling while the revocation waits for it:
    the revocation's commit passes it (a graceful hand-over re-sends nothing)."""
    c = revocable(consumer())
    await ack(c, await deliver(c, range(0, 14)))
    assert commit_point(c) == 14
    in_hand = await deliver(c, range(14, 37))

    async def agent_finishes() -> None:
        await ack(c, in_hand)

    assert await revoke(c, agent_finishes) == 37


async def test_a_message_skipped_at_a_rebalance_is_not_committed() -> None:
    """The per-message path (the andon's observations): a message a stream skipped while
    the flow was suspended is acked untracked and counts for nothing."""
    c = revocable(consumer())
    c._committed_offset[TP0] = 5

    async def stream_skips() -> None:
        c.ack(skipped_message(5))

    assert await revoke(c, stream_skips) is None


async def test_acks_from_before_an_assignment_count_for_nothing_after_it() -> None:
    """Eager rebalancing: the new assignment reads again from the committed offset, so an
    offset acked in the generation before counts for nothing in the new one."""
    c = revocable(consumer())
    c.on_partitions_assigned = BatchingConsumer.on_partitions_assigned.__get__(c)
    c._on_partitions_assigned = lambda assigned, generation: asyncio.sleep(0)
    c._set_active_tps = lambda assigned: None
    c.app.on_rebalance_return = lambda: None
    late = await deliver(c, range(0, 30))
    await ack(c, late)  # handled in generation 1, never committed
    c._acked[TP0].append(35)  # and a stray ack left from then
    c._acked_index[TP0].add(35)
    await c.on_partitions_assigned({TP0}, 2)
    c.app.consumer_generation_id = 2
    c._read_offset[TP0] = 0  # the seek: nothing committed, read from the start
    await ack(c, await deliver(c, range(0, 35), generation=2))
    assert commit_point(c) == 35


def assignable(c: Any) -> Any:
    """What Faust's ``Consumer.on_partitions_assigned`` touches besides the bookkeeping."""
    revocable(c)
    c.on_partitions_assigned = BatchingConsumer.on_partitions_assigned.__get__(c)
    c._on_partitions_assigned = lambda assigned, generation: asyncio.sleep(0)
    c.app.on_rebalance_return = lambda: None
    c.assignment = lambda: {TP0}
    return c


async def test_a_partition_kept_over_a_rebalance_is_read_in_order_from_the_committed_offset(
) -> None:
    """The generation before fetched up to offset 9 but its flow was suspended, so 3 to 9
    were never handed on; the worker keeps the partition. The new generation forgets the
    old read offset, delivers nothing fetched before the recovery's seek (the partition is
    fetched from its assignment on), and reads every record from the committed offset, 3,
    in order: with the old read offset 3 to 8 were skipped and came back after 9 with the
    seek, which the andon's count-once rule (a partition's observations in order) counted
    short."""
    for batched in (False, True):
        fetches: list[Any] = []
        c = assignable(drain_probe(fetches, batched))
        c._read_offset[TP0] = 10 if batched else 9  # read so far (batched: the next one)
        c._committed_offset[TP0] = 3
        await c.on_partitions_assigned({TP0}, 2)
        assert c._read_offset[TP0] is None
        c.app.consumer_generation_id = 2

        def recovery_seeks(c: Any = c) -> None:
            c._awaiting_seek.clear()
            c._read_offset[TP0] = 3

        fetches += [(lambda: None, [3, 4, 5, 6, 7, 8, 9]),
                    (recovery_seeks, [3, 4, 5, 6, 7, 8, 9]), (lambda: None, [10, 11])]
        await c._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
        assert c.delivered == list(range(3, 12)), f"batched={batched}"


def test_a_drained_buffer_does_not_resume_a_partition_a_rebalance_holds_paused() -> None:
    """Faust puts a partition whose stream buffer drained back among those fetched, even
    while a rebalance holds it paused before its seek; here it stays paused, and one not
    paused is resumed as before."""
    c = revocable(consumer())
    c.__dict__.update(_buffered_partitions={TP0}, _active_partitions=set(),
                      _paused_partitions={TP0})
    c.assignment = lambda: {TP0}
    c.on_buffer_drop(TP0)
    assert TP0 not in c._active_partitions and not c._buffered_partitions
    c._paused_partitions.clear()
    c._buffered_partitions.add(TP0)
    c.on_buffer_drop(TP0)
    assert TP0 in c._active_partitions


async def test_records_of_a_buffered_partition_paused_meanwhile_are_not_delivered() -> None:
    """A fetch that returns records of a partition counted as buffered (its stream buffer
    full) but paused since by a rebalance leaves them to the rebalance's seek."""
    fetches: list[Any] = []
    c = drain_probe(fetches, batched=False)
    c.__dict__.update(_buffered_partitions={TP0}, _paused_partitions={TP0})

    async def wait_next_records(timeout: float) -> tuple[Any, Any]:
        if c.__dict__.setdefault("fetched", False):
            c._stopped.set()
            return None, None
        c.fetched = True
        return {TP0: [record(o) for o in (4, 5)]}, set()  # TP0 not active: paused

    c._wait_next_records = wait_next_records
    await c._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
    assert c.delivered == []


def seekable(c: Any) -> Any:
    """The probe's seeks: Faust's ``Consumer.seek`` (the read offset) over a recorded one."""
    c.seeks = []

    async def _seek(tp: TP, offset: int) -> None:
        c.seeks.append(offset)

    log = logging.getLogger("test")
    c.__dict__.update(_seek=_seek, log=SimpleNamespace(
        dev=log.debug, info=log.info, warning=log.warning))
    return c


async def test_records_fetched_before_the_recovery_seek_are_read_again_from_its_offset() -> None:
    """A newly assigned partition is fetched before Faust pauses it (3847 to 3889, left
    undelivered: paused), so the fetch position is past them; the fetch made while the
    recovery seeks it back to the committed offset (3847) returns the records after them
    (3890 on), held by the gate. Delivered, they would stand for 3847 on (the offsets the
    broker skips) and the commit would pass 3847 to 3889 unread (in a soak: every
    touchpoint's moments counted short, scores wrong). They are read again from 3847."""
    for batched in (False, True):
        fetches: list[Any] = []
        c = seekable(drain_probe(fetches, batched))

        def recovery_seeks(c: Any = c) -> None:  # perform_seek: unsure, read offset 3847
            c._unsure.add(TP0)
            c._sought.add(TP0)
            c._read_offset[TP0] = 3847

        fetches += [(recovery_seeks, range(3890, 3895)), (lambda: None, range(3847, 3895))]
        await c._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
        assert c.seeks == [3847], f"batched={batched}"
        assert c.delivered == list(range(3847, 3895)), f"batched={batched}"


async def test_a_partition_with_fetched_records_left_undelivered_is_read_again() -> None:
    """Records fetched but not handed on (the partition paused meanwhile) moved the fetch
    position past them; the next fetch's records do not continue the reading, so the
    partition is read again from its read offset."""
    c = seekable(drain_probe([], batched=True))
    c._read_offset[TP0] = 10
    paused = {"now": True}

    async def wait_next_records(timeout: float) -> tuple[Any, Any]:
        step = c.__dict__.setdefault("step", 0)
        c.step = step + 1
        if step == 3:
            c._stopped.set()
            return None, None
        offsets = [range(10, 15), range(15, 20), range(10, 20)][step]
        active = set() if paused["now"] else {TP0}
        paused["now"] = False
        return {TP0: [record(o) for o in offsets]}, active

    c._wait_next_records = wait_next_records
    await c._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
    assert c.seeks == [10]
    assert c.delivered == list(range(10, 20))


async def test_offsets_the_broker_skipped_after_a_seek_pass_once_read_again(
        caplog: pytest.LogCaptureFixture) -> None:
    """After a seek to 5 the records start at 8 (5 to 7 are transaction markers): read
    again from 5, they still start at 8, so they continue the reading, and the batch
    stands for 5 on (its commit passes the skipped offsets). Both steps warn, naming the
    offsets."""
    caplog.set_level(logging.WARNING, logger="test")
    fetches: list[Any] = []
    c = seekable(drain_probe(fetches, batched=True))
    c._read_offset[TP0] = 5
    c._unsure.add(TP0)
    c._sought.add(TP0)
    fetches += [(lambda: None, [8, 9]), (lambda: None, [8, 9])]
    await c._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
    assert c.seeks == [5]
    assert c.delivered == [8, 9]
    assert c._batches[TP0][-1].first_offset == 5
    assert TP0 not in c._unsure
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("past the next offset 5: read again from 5" in w for w in warnings), warnings
    assert any("offsets 5 to 7 taken as skipped by the broker" in w for w in warnings), warnings


async def test_a_fetch_starting_past_the_read_offset_of_a_partition_in_order_is_read_again(
) -> None:
    """A partition read in order up to 2492 (read offset 2493) gets a fetch of 2510 alone,
    as after a broker restart in a soak: the records from 2493 to 2509 were fetched and
    never handed on. Taken as offsets the broker skipped, the batch stood for 2493 on and
    the commit passed the seventeen records unread. The partition is read again from
    2493, and every record is delivered once, in order."""
    fetches: list[Any] = []
    c = seekable(drain_probe(fetches, batched=True))
    c._read_offset[TP0] = 2493
    fetches += [(lambda: None, [2510]), (lambda: None, range(2493, 2512))]
    await c._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
    assert c.seeks == [2493]
    assert c.delivered == list(range(2493, 2512))
    batch = c._batches[TP0][-1]
    batch.handled = True
    c._committed_offset[TP0] = 2493
    assert commit_point(c) == 2512


async def test_a_newly_assigned_partition_is_not_delivered_before_the_recovery_seeks_it(
) -> None:
    """Faust marks a newly assigned partition active before it pauses it for the recovery,
    so a fetch can return its records before its table is restored and before the seek to
    its committed offset. They wait for that seek."""
    for batched in (False, True):
        fetches: list[Any] = []
        c = seekable(assignable(drain_probe(fetches, batched)))
        await c.on_partitions_assigned({TP0}, 2)
        c.app.consumer_generation_id = 2

        def recovery_seeks(c: Any = c) -> None:  # perform_seek: committed offset 0
            c._awaiting_seek.clear()
            c._read_offset[TP0] = 0

        fetches += [(lambda: None, [0, 1, 2]), (recovery_seeks, [0, 1, 2, 3])]
        await c._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
        assert c.delivered == [0, 1, 2, 3], f"batched={batched}"


def with_perform_seek(c: Any, committed: dict[TP, int | None], earliest: int) -> Any:
    """Faust's ``perform_seek`` over scripted committed and earliest offsets."""
    async def seek_to_committed() -> dict[TP, int | None]:
        return dict(committed)

    async def earliest_offsets(*tps: TP) -> dict[TP, int]:
        c.asked_earliest = list(tps)
        return dict.fromkeys(tps, earliest)

    c.__dict__.update(seek_to_committed=seek_to_committed, earliest_offsets=earliest_offsets,
                      asked_earliest=[])
    c.app.conf = SimpleNamespace(consumer_auto_offset_reset="earliest")
    return c


async def test_a_partition_without_a_commit_is_read_from_its_earliest_offset_after_the_seek(
) -> None:
    """aiokafka's seek to the committed offsets leaves a partition without one where
    earlier fetches moved it: past records fetched and never handed on. It is sought to
    its earliest offset, which becomes its read offset, so a fetch past that is read again
    from there."""
    fetches: list[Any] = []
    c = with_perform_seek(seekable(assignable(drain_probe(fetches, batched=True))),
                          {TP0: None}, earliest=0)
    await c.on_partitions_assigned({TP0}, 2)
    c.app.consumer_generation_id = 2
    await c.perform_seek()
    assert c.asked_earliest == [TP0] and c.seeks == [0] and c._read_offset[TP0] == 0
    assert not c._awaiting_seek
    fetches += [(lambda: None, [40, 41]), (lambda: None, range(0, 42))]
    await c._drain_messages(SimpleNamespace(_stopped=asyncio.Event()))
    assert c.seeks == [0, 0]
    assert c.delivered == list(range(0, 42))


async def test_a_partition_with_a_commit_is_left_at_it_by_the_seek() -> None:
    c = with_perform_seek(seekable(assignable(drain_probe([], batched=True))),
                          {TP0: 17}, earliest=0)
    await c.on_partitions_assigned({TP0}, 2)
    await c.perform_seek()
    assert c.asked_earliest == [] and c.seeks == [] and c._read_offset[TP0] == 17


async def test_a_delivery_a_seek_overtook_leaves_the_read_offset_to_the_seek() -> None:
    """The recovery's seek (to 5) runs while a batch of 5 to 9 waits for room in the
    stream's buffer; the batch may then be cleared with the agents' queues. The read
    offset stays at the seek's 5, so the records come again."""
    c = seekable(consumer())

    async def seek_meanwhile(message: BatchMessage) -> None:
        await c.seek(TP0, 5)

    await c._deliver_batch(TP0, [record(o) for o in range(5, 10)], 1, seek_meanwhile, None)
    assert c._read_offset[TP0] == 5 and TP0 in c._unsure
