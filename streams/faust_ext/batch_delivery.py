"""Batch delivery: one Faust event per fetched run of records, for the hot input topic.

Faust hands every consumed record to the agents one by one: a ``Message`` object, two
tasks in ``Consumer._drain_messages`` (``wait_first`` of the conductor callback and the
flow-control wait), the conductor callback with its flow-control and producer checks, a
queue hand-off, the stream's tracking, sensors and context variables, and an ack. That
path costs more than the whole job does per record, so it caps any Faust agent at a few
thousand records per second whatever the agent does.

With ``MOT_BATCH_DELIVERY`` on, for the topics named in the app's ``batched_topics``
(the input topic), the consumer here delivers
the records of one partition from one fetch as *one* event: a :class:`BatchMessage` whose
value is the list of aiokafka ``ConsumerRecord``\\ s, in offset order. Everything else
about Faust stays as it is: the agent subscribes to the topic, the assignor gives it and
its tables' partitions together, the conductor delivers the event to the agent's stream
(with its flow control and buffer back-pressure), the stream tracks it and acks it after
the agent's body has handled it, and the current event gives the tables the partition.
The batch message stands for its last offset, which the stream acks once the agent's body
has handled all of the batch; the consumer then counts the batch's other offsets as acked
too (:meth:`BatchingConsumer._new_offset`), in delivery order. So a crash before the ack
re-delivers the whole batch (at-least-once), and nothing is committed past a record that
was not handled.

Commits never pass a record no agent handled (:meth:`BatchingConsumer._new_offset`,
:meth:`BatchingConsumer.ack`), for every topic. Faust's bookkeeping lets them, at a
rebalance: its revocation forgets the partitions' committed offsets *before* the commit
that ends it (``Consumer.on_partitions_revoked``, then ``wait_empty``), and its streams ack,
unprocessed, the events they take from their queues while the flow is suspended or whose
generation is over; with no committed offset known, ``Consumer._new_offset`` commits the
first run of acked offsets wherever it starts (it checks the run against the committed
offset only when that is known and non-zero, and lets it start one past it). So a batch or
message skipped at a rebalance, acked, was committed over, and every record before it in
the run never read was skipped for good (in a soak: 266 input records at the first
rebalances of a run, and observations of the andon). Here an ack counts only for a message
a stream took to process (Faust's ``tracked``) or a batch the agent handled; the committed
offset of a revoked partition is kept until the revocation's commit; a partition never
committed counts from the first offset read since its assignment; a run of acked offsets
is committed only if it starts there (Faust's tolerance of one offset kept: its gap
bookkeeping starts one past the committed offset); and a new assignment starts the
bookkeeping afresh (the recovery seeks every partition back to its committed offset).
Upstream: ``Consumer.ack`` should not count skipped events, ``on_partitions_revoked`` pop
after the final commit, and ``_new_offset`` check ``committed is not None``.

A partition is also read in order across a rebalance. Faust keeps the read offset of a
partition the worker keeps, though its previous generation may have fetched records it never
delivered (the flow suspended), and it may deliver a partition's records before the
recovery's seek: a newly assigned partition is fetched at once, and one whose stream buffer
drained is put back among the fetched partitions even while the rebalance holds it paused
(``Consumer.on_buffer_drop``; the drain loop also delivers any partition counted as
buffered). The records from the committed offset up to the stale read offset were then
skipped and came back, after the later ones, with the seek: in a soak, observations the
andon counted short. Here a new assignment forgets the read offsets and the buffered
partitions (:meth:`BatchingConsumer.on_partitions_assigned`), and a drained buffer or the
drain loop never resumes a paused partition (:meth:`BatchingConsumer.on_buffer_drop`).
Upstream: ``on_partitions_assigned`` should reset ``_read_offset`` and
``_buffered_partitions``, and ``on_buffer_drop`` respect ``_paused_partitions``.

And a fetch made before a seek is never delivered after it. A newly assigned partition is
fetched until the app pauses it (those records are left undelivered, the fetch position is
past them), and a fetch made while the recovery awaits the seek back to the committed
offset reads from that position; delivered once the recovery's gate opens, its batch stood
for the offsets before it as if the broker had skipped them. Here a partition sought, or
with fetched records left undelivered, since its last delivery must go on at its read
offset: records starting past it are not delivered and the partition is read again from
there, once (:meth:`BatchingConsumer._continues`; if they still start past it, the broker
skipped those offsets). Upstream: the drain loop should drop a fetch made before a seek
(aiokafka drops only the fetches it still buffers).

And the input topic is read without a hole, whatever the partition's state. Records can
be fetched and never handed on with nothing to mark it: in a soak, a broker restart half a
second after an assignment, with the group back in the same generation, left two
partitions' last records before the restart undelivered while their fetch positions moved
past them, and the next records stood for them as offsets the broker skipped (30 records
committed unread). Here a batch of the input topic that starts past the read offset is
always read again from it, once, and taken for skipped offsets only if the records read
again still start there. A newly assigned partition delivers nothing before the recovery's
seek (Faust marks it active before pausing it, and its table is not restored yet); a
partition without a committed offset is sought to its earliest offset, which becomes its
read offset, since aiokafka's ``seek_to_committed`` leaves it wherever earlier fetches
moved it; and a delivery that a seek overtook (the recovery's, while the delivery waited
for room in the stream's buffer) leaves the read offset to the seek. Upstream: aiokafka's
``seek_to_committed`` should reset a partition without a commit by its reset policy, and
Faust pause a newly assigned partition before it marks it active.

The records of one partition are in offset order and each batch is handled before the
next one of the partition is delivered, so the agent sees the same order per partition.
Topics not listed and Faust's own internal topics are delivered as usual; the tables'
changelogs go to the recovery one fetch per partition at a time
(:mod:`streams.faust_ext.batched_restore`).

An upstream version of this would be a per-topic (or per-agent) option such as
``app.topic(..., deliver_batches=True)``; it needs nothing from aiokafka.

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Collection, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, EventT
from faust.types.tuples import ConsumerMessage, ack_lock
from faust.utils.functional import consecutive_numbers
from mode.utils.futures import notify


class BatchMessage(ConsumerMessage):
    """A run of records of one partition, standing in for its last record.

    ``offset`` is the last record's offset (so commits, lag and the stream's bookkeeping
    see the position after the batch); ``first_offset`` is the first offset it covers: the
    first record's offset, or the offset after the previous batch when the broker
    skipped offsets (transaction markers, compaction) in between.
    """

    __slots__ = ("first_offset", "handled")

    def __init__(self, tp: TP, records: Sequence[Any], first_offset: int,
                 generation_id: int | None) -> None:
        last = records[-1]
        super().__init__(
            tp.topic, tp.partition, last.offset,
            last.timestamp / 1000.0 if last.timestamp is not None else cast(float, None),
            last.timestamp_type, None, None, records, None,
            0, sum(r.serialized_value_size for r in records),
            tp, generation_id=generation_id,
        )
        self.first_offset = first_offset
        self.handled = False


def records_of(event: EventT) -> Sequence[Any]:
    """The records an agent's event carries: the batch, or the one message itself."""
    message = event.message
    if isinstance(message, BatchMessage):
        return cast(Sequence[Any], message.value)
    return (message,)


def batch_handled(event: EventT) -> None:
    """The agent has handled every record of this event: its offsets may be committed."""
    message = event.message
    if isinstance(message, BatchMessage):
        message.handled = True


def timestamp_s(record: Any) -> float | None:
    """A record's timestamp in seconds whether it is a Faust message or an aiokafka record."""
    if isinstance(record, faust.types.Message):
        return cast(float | None, record.timestamp)
    return record.timestamp / 1000.0 if record.timestamp is not None else None


_ALWAYS_OPEN = asyncio.Event()
_ALWAYS_OPEN.set()


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with batch delivery for the app's batched topics."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Delivered batches per partition, oldest first, until their offsets are counted.
        self._batches: defaultdict[TP, deque[BatchMessage]] = defaultdict(deque)
        # The first offset delivered since the partition's assignment (its base while it
        # has no committed offset), and the committed offsets of partitions being revoked.
        self._read_from: dict[TP, int] = {}
        self._revoked_committed: dict[TP, int] = {}
        # Partitions whose next fetch may not continue from their read offset: sought
        # since their last delivery (an assignment, a seek to the committed offsets), or
        # with fetched records left undelivered; and of those, the ones sought (their read
        # offset is then the next offset, on the per-message path too). A fetch of one that
        # starts past that offset is read again from it, once (:meth:`_continues`).
        self._unsure: set[TP] = set()
        self._sought: set[TP] = set()
        self._read_again_at: dict[TP, int] = {}
        # Seeks per partition (an assignment, the recovery's, a read again): a delivery
        # that a seek overtook leaves the read offset to the seek.
        self._seeks: defaultdict[TP, int] = defaultdict(int)
        # Partitions assigned and not yet sought back to their committed offsets by the
        # recovery (changelogs aside: the recovery reads those itself): nothing of theirs
        # is delivered until it has (their tables are not restored yet either).
        self._awaiting_seek: set[TP] = set()

    def ack(self, message: Any) -> bool:
        """Faust's ack, counting the offset only if the record was handled: a batch the
        agent handled (:func:`batch_handled`), a message a stream took to process. An
        event a stream skipped at a rebalance (flow suspended, generation over) is acked
        untracked; counting it would let the commit pass it unprocessed."""
        if isinstance(message, BatchMessage):
            counts = message.handled
        else:
            counts = bool(getattr(message, "tracked", True))
        if counts:
            return bool(super().ack(message))
        with ack_lock:
            if not message.acked:
                message.acked = True
                self._unacked_messages.discard(message)
                notify(self._waiting_for_ack)
        return False

    async def on_partitions_revoked(self, revoked: AbstractSet[TP]) -> None:
        """Faust forgets the revoked partitions' committed offsets before the commit that
        ends the revocation; kept here until then, so that commit is checked against them."""
        committed = self._committed_offset
        self._revoked_committed.update(
            {tp: committed[tp] for tp in revoked if committed.get(tp) is not None})
        await super().on_partitions_revoked(cast(Any, revoked))

    async def on_partitions_assigned(self, assigned: AbstractSet[TP],
                                     generation_id: int = 0) -> None:
        """A new assignment reads every partition again from its committed offset (the
        recovery's seek): what was acked, delivered or read before counts for nothing, the
        read offset included, or a partition kept over the rebalance is read out of order
        (the module's docstring tells how)."""
        self._revoked_committed.clear()
        self._buffered_partitions.clear()
        self._being_sought(assigned)
        changelogs = self._changelogs
        self._awaiting_seek.update(tp for tp in assigned if tp.topic not in changelogs)
        for tp in assigned:
            self._read_again_at.pop(tp, None)
            self._acked.pop(tp, None)
            self._acked_index.pop(tp, None)
            self._gap.pop(tp, None)
            self._batches.pop(tp, None)
            self._read_from.pop(tp, None)
            self._read_offset.pop(tp, None)
        await super().on_partitions_assigned(cast(Any, assigned), generation_id)

    async def perform_seek(self) -> None:
        """Faust's seek of every assigned partition to its committed offset; what a fetch
        made meanwhile returns may come from before it (:meth:`_continues`).

        aiokafka's ``seek_to_committed`` leaves a partition without a committed offset
        where earlier fetches moved it, past records fetched and never delivered (those of
        a newly assigned partition before Faust paused it, of a fetch whose drain loop a
        revocation cancelled). With ``consumer_auto_offset_reset`` ``earliest`` such a
        partition is sought to its earliest offset, which becomes its read offset, so every
        fetch from then on is checked against it (:meth:`_continues`)."""
        assigned = self.assignment()
        self._being_sought(assigned)
        await super().perform_seek()
        self._awaiting_seek.clear()
        changelogs = self._changelogs
        unread = [tp for tp in assigned
                  if tp.topic not in changelogs and self._read_offset.get(tp) is None]
        if unread and getattr(self.app.conf, "consumer_auto_offset_reset", None) == "earliest":
            earliest = await self.earliest_offsets(*unread)
            for tp in unread:
                offset = earliest.get(tp)
                if offset is None:
                    continue
                await self.seek(tp, offset)
                self._read_offset[tp] = offset

    async def seek(self, partition: TP, offset: int) -> None:
        self._being_sought((partition,))
        await super().seek(partition, offset)

    def _being_sought(self, partitions: Collection[TP]) -> None:
        """A seek of ``partitions`` (an assignment's, the recovery's, a read again): their
        next records may not continue their reading, and a delivery under way leaves
        their read offsets to the seek."""
        self._unsure.update(partitions)
        self._sought.update(partitions)
        for tp in partitions:
            self._seeks[tp] += 1

    async def _continues(self, tp: TP, first: int, read_offset: int | None) -> bool:
        """Whether records starting at ``first`` continue the partition's reading.

        False when they start past its next offset: for a batched topic always, for
        another one if it was sought or had records left undelivered since its last
        delivery. They may come from a fetch made before a seek, or after records fetched
        and never handed on (the fetch position had moved past them); the partition is
        read again from that offset, and they are not delivered. If the records read
        again start past it too, the broker skipped those offsets
        (transaction markers, compaction): they continue. The input topic is checked
        whatever its state, since any offset taken as skipped is committed unread."""
        if read_offset is None:
            return True
        batched = tp.topic in self._batched
        if not batched and tp not in self._unsure:
            return True
        expected = read_offset if tp in self._sought or batched else read_offset + 1
        if first <= expected:
            return True
        if self._read_again_at.get(tp) == expected:
            self.log.warning("%s: read again from %d, the records start at %d: offsets "
                             "%d to %d taken as skipped by the broker", tp, expected, first,
                             expected, first - 1)
            return True
        self.log.warning("%s: a fetch starts at offset %d, past the next offset %d: "
                         "read again from %d", tp, first, expected, expected)
        try:
            await self.seek(tp, expected)
        except Exception as exc:  # no longer assigned: the next assignment seeks it
            self.log.warning("%s: reading again from %d failed: %r", tp, expected, exc)
        else:
            self._read_again_at[tp] = expected
        return False

    def _in_order(self, tp: TP) -> None:
        """Records of ``tp`` were delivered from its read offset on."""
        self._unsure.discard(tp)
        self._sought.discard(tp)
        self._read_again_at.pop(tp, None)

    @property
    def _changelogs(self) -> frozenset[str]:
        tables = getattr(self.app, "tables", None)
        return frozenset(getattr(tables, "changelog_topics", ()))

    @property
    def _batched(self) -> frozenset[str]:
        return cast(frozenset[str], getattr(self.app, "batched_topics", frozenset()))

    def on_buffer_drop(self, tp: TP) -> None:
        """Faust's re-enabling of a partition whose stream buffer has drained, but never of
        one a rebalance holds paused (until its recovery has sought it back to the committed
        offset) or that is no longer assigned: Faust's own puts it back among the partitions
        fetched whatever their state."""
        buffered = self._buffered_partitions
        if tp not in buffered:
            return
        buffered.discard(tp)
        if tp not in self._paused_partitions and tp in self.assignment():
            self._get_active_partitions().add(tp)

    def _base_offset(self, tp: TP) -> int | None:
        """Where the partition's next commit must start: its committed offset (kept over a
        revocation), else the first offset read since its assignment; None: unknown."""
        committed = self._committed_offset.get(tp)
        if committed is None:
            committed = self._revoked_committed.get(tp)
        return committed if committed is not None else self._read_from.get(tp)

    def _new_offset(self, tp: TP) -> int | None:
        """The next commit offset: the end of the run of acked offsets that starts at the
        partition's base (:meth:`_base_offset`), once the batches acked so far count in full.

        A batch's offsets count once the agent has said it handled the batch
        (:func:`batch_handled`), in delivery order and only up to the first batch not
        handled yet, so the commit never passes a record that was not handled. The
        stream acks, unhandled, the events it skips at a rebalance; those, and batches
        dropped from its buffer then, add nothing: the partition is read again from its
        committed offset. Faust's ``Consumer._new_offset`` otherwise (gaps the broker
        left filled in), with its check of the run's start made whatever the base.
        """
        base = self._base_offset(tp)
        pending = self._batches.get(tp)
        acked = self._acked[tp]
        index = self._acked_index[tp]
        if pending:
            generation = self.app.consumer_generation_id
            while pending:
                batch = pending[0]
                if batch.handled:
                    pending.popleft()
                    start = batch.first_offset if base is None else max(batch.first_offset, base)
                    fresh = [o for o in range(start, batch.offset + 1) if o not in index]
                    index.update(fresh)
                    acked.extend(fresh)
                elif batch.acked or batch.generation_id != generation:
                    # Acked unhandled (skipped by the stream at a rebalance), or dropped
                    # from its buffer then: read again from the committed offset.
                    pending.popleft()
                else:
                    break
        if not acked or base is None:
            return None
        gap = self._gap[tp]
        if gap:
            candidates = sorted(gap.overlap(0, max(acked)), key=lambda x: x.begin)
            if candidates:
                filled: list[int] = []
                for entry in candidates:
                    filled.extend(range(entry.begin, entry.end))
                new_max = max(filled[-1], max(acked) + 1)
                acked.extend(filled)
                gap.chop(0, new_max)
        acked.sort()
        if acked[0] < base:  # at or before the committed offset: committed already
            stale = [o for o in acked if o < base]
            acked[:len(stale)] = []
            index.difference_update(stale)
            if not acked:
                return None
        if acked[0] - base > 1:
            return None  # the records from the base on are not all handled yet
        run = next(consecutive_numbers(acked))
        acked[:len(run)] = []
        index.difference_update(run)
        return cast(int, run[-1]) + 1

    async def _handle_attached(self, commit_offsets: Any) -> None:  # pragma: no cover - Kafka
        """Before the commit's producer flush: Faust's attached messages, then the app's
        ``before_commit`` hooks, which hand to the producer what the records up to
        ``commit_offsets`` left in memory (the andon's observation batches). The offsets
        are taken before this runs, so whatever a hook sends covers every record they pass.

        Changes: overrides ``Consumer._handle_attached`` (private in faust-streaming), the
        step of ``_commit_tps`` between choosing the offsets and flushing the producer.
        Upstream candidate: a public before-commit signal.
        """
        await super()._handle_attached(commit_offsets)
        for hook in getattr(self.app, "before_commit", ()):
            await hook()

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - needs Kafka
        """Faust's drain loop, with one delivery per partition and fetch for batched topics.

        Kept in step with ``faust.transport.consumer.Consumer._drain_messages`` (0.15):
        the same stop conditions, read-offset filter, gap handling, commit-every check
        and flow-control wait; records of other topics take the per-message path.
        """
        callback = self.callback
        batched: frozenset[str] = getattr(self.app, "batched_topics", frozenset())
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        read_offset = self._read_offset
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        to_message = self._to_message
        app = self.app
        streams_open = getattr(app.tables.recovery, "streams_open", _ALWAYS_OPEN)
        # Changelog records go to the recovery a fetch at a time (faust_ext/batched_restore.py).
        apply_changelog = getattr(app.tables.recovery, "apply_changelog_records", None)
        changelogs = frozenset(app.tables.changelog_topics) if apply_changelog else frozenset()
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                records, active = await self._wait_next_records(1.0)
                # The generation the records belong to is the one *after* the fetch: aiokafka
                # returns no record fetched before a rebalance's reassignment or seek, so what
                # it returns now is read from the current positions and must be delivered.
                # (Taken before the fetch, a rebalance that completed while the fetch waited
                # would drop the first records read after it; nothing seeks back to them, so
                # the next record would open a gap over them and commit them unprocessed.)
                # A rebalance that starts while these are delivered stops the delivery below,
                # and its recovery seeks back to the committed offsets.
                generation_id = app.consumer_generation_id
                await self.sleep(0)
                if records is None or self.should_stop:
                    unset_flag(CONSUMER_FETCHING)
                    continue
                if not streams_open.is_set():
                    # Faust is handing the partitions back to the streams and will clear the
                    # agents' and the changelog queue when done (faust_ext/recovery_gate.py).
                    await self.wait_first(streams_open.wait())
                    if app.consumer_generation_id != generation_id:
                        self._unsure.update(records)
                        unset_flag(CONSUMER_FETCHING)
                        continue  # a new rebalance: it seeks back to the committed offsets
                if not self.flow_active:
                    # As Faust's getmany: go back to the committed offsets and fetch again.
                    try:
                        await self.perform_seek()
                    except Exception as exc:
                        self.log.warning("exception performing seek when flow not active %r", exc)
                    unset_flag(CONSUMER_FETCHING)
                    continue
                for tp, tp_records in records.items():
                    if (not self.flow_active or self.should_stop
                            or app.consumer_generation_id != generation_id):
                        self._unsure.update(records)  # these and the rest not handed on
                        break
                    if not (active is None or tp in active
                            or (tp in self._buffered_partitions
                                and tp not in self._paused_partitions)):
                        self._unsure.add(tp)
                        continue  # paused meanwhile (a rebalance): its seek reads them again
                    if tp in self._awaiting_seek:
                        # Fetched between its assignment and the recovery's seek (Faust
                        # pauses it only after marking it active): read again after it.
                        self._unsure.add(tp)
                        continue
                    app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    if tp.topic in batched:
                        await self._deliver_batch(tp, tp_records, generation_id, callback,
                                                  commit_every)
                        continue
                    if tp.topic in changelogs and self._apply_changelog(
                            tp, tp_records, apply_changelog):
                        continue
                    for record in tp_records:
                        if app.consumer_generation_id != generation_id:
                            self._unsure.add(tp)
                            break
                        offset = record.offset
                        r_offset = read_offset[tp]
                        if r_offset is not None and offset < r_offset:
                            continue  # re-delivered after a seek: already handed on
                        if tp in self._unsure:
                            if not await self._continues(tp, offset, r_offset):
                                break
                            self._in_order(tp)
                        if r_offset and offset - r_offset > 1 and acks_enabled_for(tp.topic):
                            await self._add_gap(tp, r_offset + 1, offset)
                        await self._maybe_commit_every(commit_every)
                        self._read_from.setdefault(tp, offset)
                        seeks = self._seeks[tp]
                        await self.wait_first(callback(to_message(tp, record)),
                                              self.suspend_flow.wait())
                        if (app.consumer_generation_id == generation_id
                                and self._seeks[tp] == seeks):
                            read_offset[tp] = offset
                unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)

    def _apply_changelog(self, tp: TP, records: list[Any], apply: Any) -> bool:
        """One fetch's records of a changelog partition, applied by the recovery in one
        write batch; False when it leaves them to Faust's per-record path. The read offset
        moves as the per-message path moves it (the last offset read)."""
        r_offset = self._read_offset[tp]
        if r_offset is not None and records[0].offset < r_offset:
            records = [r for r in records if r.offset >= r_offset]
            if not records:
                return True
        if not apply(tp, records):
            return False
        self._read_offset[tp] = records[-1].offset
        return True

    async def _maybe_commit_every(self, commit_every: int | None) -> None:
        if commit_every is not None and self._n_acked >= commit_every:
            self._n_acked = 0
            await self.commit()

    async def _deliver_batch(self, tp: TP, records: list[Any], generation_id: int,
                             callback: Any, commit_every: int | None) -> None:
        # For batched partitions the read offset is the next offset to read, as after a
        # seek (the per-message path keeps the last offset read instead).
        r_offset = self._read_offset[tp]
        if r_offset is not None and records[0].offset < r_offset:
            records = [r for r in records if r.offset >= r_offset]
            if not records:
                return
        first = records[0].offset
        if r_offset is not None and r_offset < first:
            if not await self._continues(tp, first, r_offset):
                return
            first = r_offset  # and the offsets the broker skipped before this batch
        last = records[-1].offset
        await self._maybe_commit_every(commit_every)
        batch = BatchMessage(tp, records, first, generation_id)
        self._read_from.setdefault(tp, first)
        self._batches[tp].append(batch)
        seeks = self._seeks[tp]
        delivery = callback(batch)
        waited = await self.wait_first(delivery, self.suspend_flow.wait())
        if waited is not None and delivery not in waited.done:
            self._unsure.add(tp)  # the flow stopped first: the batch may not be queued
        elif self.app.consumer_generation_id == generation_id and self._seeks[tp] == seeks:
            # (A seek meanwhile, such as the recovery's while the delivery waited for the
            # stream's buffer, set the read offset; a queued batch may be cleared with it.)
            self._read_offset[tp] = last + 1
            self._in_order(tp)
