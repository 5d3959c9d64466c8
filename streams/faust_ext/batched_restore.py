"""Changelog records applied to RocksDB one write batch per fetch, for restore and standby.

Faust hands every changelog record to the recovery one by one: a ``Message`` and two tasks
in ``Consumer._drain_messages`` (the conductor callback raced against the flow-control
wait), the conductor's decode of key and value into an ``Event``, a put into the tables'
changelog queue, and in ``Recovery._slurp_changelogs`` an ``asyncio.wait_for`` (one more
task) per get, the table's ``on_changelog_event`` hook and the offset bookkeeping; only then
are the buffered records written (``apply_changelog_batch``, every 1,000). That path caps a
restore at a few thousand records per second, and a standby copy costs its worker about as
much CPU per record as the active worker spends scoring it. The end of a restore is also
found only when ``_slurp_changelogs`` next looks, which may be a 5 s queue timeout later.

Here the consumer (:class:`streams.faust_ext.batch_delivery.BatchingConsumer`) hands the
records of one changelog partition from one fetch to
:meth:`BatchedRecovery.apply_changelog_records`, which writes them as they are (key and
value bytes, never decoded: whatever the tables' encoding) in one RocksDB ``WriteBatch``
together with the partition's persisted offset (the last record's, as Faust's
``apply_changelog_batch`` writes it, but in the same atomic write), and moves the
recovery's offset of the partition as ``_slurp_changelogs`` does (records at or below it
are skipped). Once every active partition is read up to the highwater this recovery built
for it (:meth:`BatchedRecovery.restore_complete`) the recovery is signalled done at once, as
``_slurp_changelogs`` would at its next look, and the signal is cleared when the next
recovery starts (Faust clears it only in that loop); a standby partition caught up calls
``on_standbys_ready`` as it does. Records of a partition neither active nor standby are
not applied (Faust's loop warns and, through a bug, applies them to the previous record's
table). The gate of :mod:`streams.faust_ext.recovery_gate` still holds a fetch made while
Faust hands the partitions back to the streams, and the records no longer pass through
the changelog queue that ``flow_control.resume()`` clears. The table's
``on_changelog_event`` hook is not called on this path (no table of the service sets one).
A table whose store is not RocksDB (``memory://`` in tests) keeps Faust's path.

Restore progress (:meth:`BatchedRecovery.progress`): records restored in this recovery,
records remaining (from Faust's highwaters and offsets; unknown until both are built for
the active partitions: ``_build_highwaters`` and ``_build_offsets`` extended), the rate and
an ETA; logged every
:attr:`BatchedRecovery.progress_log_interval_s` while records arrive, read by ``/health``
and the metrics at request time (nothing per record).

Changes: ``Recovery._set_recovery_started`` (extended), reads ``Store._db_for_partition``
and ``Store.offset_key``, ``Recovery._standbys_span``. Upstream candidate: a batched
changelog path in ``faust.tables.recovery`` (the consumer delivering a fetch's records of a
changelog partition as one unit to ``apply_changelog_batch``), and ending the recovery
from the apply rather than on a queue timeout.

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from faust.stores import rocksdb as rocksdb_store
from faust.types import TP

from streams.faust_ext.recovery_gate import GatedRecovery, GatedTableManager

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestoreProgress:
    """Where the worker's restore stands: ``records_restored`` in the current (or last)
    restore, ``records_restored_total`` since the worker started; standby apart."""

    recovering: bool
    records_restored: int
    records_restored_total: int
    records_remaining: int | None
    records_per_s: float
    eta_s: float | None
    standby_records_applied: int


class BatchedRecovery(GatedRecovery):
    """The gated recovery, applying changelog records a fetch at a time."""

    #: How often, at most, a restore logs its progress.
    progress_log_interval_s: float = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.records_restored = 0
        self.records_restored_total = 0
        self.standby_records_applied = 0
        self._restore_started_at: float | None = None
        self._remaining_known = False
        self._progress_logged_at = 0.0

    def _set_recovery_started(self) -> None:
        # A restore this path ended left ``signal_recovery_end`` set, and Faust clears it
        # only at the top of ``_slurp_changelogs``' loop, which on this path turns on a 5 s
        # queue timeout: a recovery started meanwhile would find it set and hand its
        # partitions to the streams unrestored. Nothing of this recovery is applied yet
        # (its active partitions are resumed after this), so the signal is its own from
        # here on.
        self.signal_recovery_end.clear()
        super()._set_recovery_started()
        self.records_restored = 0
        self._restore_started_at = time.monotonic()
        self._progress_logged_at = self._restore_started_at

    async def _build_highwaters(self, consumer: Any, tps: set[TP], destination: Any,
                                title: str) -> None:
        if title == "active":
            self._remaining_known = False  # until the offsets are built from them
        await super()._build_highwaters(consumer, tps, destination, title)

    async def _build_offsets(self, consumer: Any, tps: set[TP], destination: Any,
                             title: str) -> None:
        await super()._build_offsets(consumer, tps, destination, title)
        if title == "active":
            self._remaining_known = True

    def apply_changelog_records(self, tp: TP, records: Sequence[Any]) -> bool:
        """Write one fetch's records of changelog partition ``tp`` (aiokafka records) to
        its table's RocksDB in one batch. False: not done here (a store that is not
        RocksDB); the caller hands them to Faust's path."""
        table = self.tp_to_table.get(tp)
        if table is None:
            return False
        store = table.data
        if not isinstance(store, rocksdb_store.Store):
            return False
        if tp in self.active_tps:
            offsets, active = self.active_offsets, True
        elif tp in self.standby_tps:
            offsets, active = self.standby_offsets, False
        else:
            log.warning("changelog records of %s, neither active nor standby: not applied", tp)
            return True
        seen = offsets.get(tp)
        if seen is not None:
            records = [r for r in records if r.offset > seen]
        if not records:
            return True
        if store.use_rocksdict:
            batch = rocksdb_store.rocksdict.WriteBatch(raw_mode=True)
        else:  # pragma: no cover - python-rocksdb is not installed here
            batch = rocksdb_store.rocksdb.WriteBatch()
        for record in records:
            if record.key is None:
                continue  # a table's changelog record always has a key
            if record.value is None:
                batch.delete(record.key)
            else:
                batch.put(record.key, record.value)
        last = records[-1].offset
        batch.put(store.offset_key, str(last).encode())
        store._db_for_partition(tp.partition).write(batch)
        offsets[tp] = last
        if active:
            self.records_restored += len(records)
            self.records_restored_total += len(records)
            self._after_active_apply()
        else:
            self.standby_records_applied += len(records)
            self._after_standby_apply()
        return True

    def _after_active_apply(self) -> None:
        if not self.in_recovery:
            return
        if self.restore_complete():
            self.flush_buffers()  # anything Faust's own path still holds
            progress = self.progress()
            self._set_recovery_ended()
            log.info("restored %d changelog records in %.1f s (%.0f records/s)",
                     progress.records_restored, self._elapsed(), progress.records_per_s)
            self.signal_recovery_end.set()
            return
        now = time.monotonic()
        if now - self._progress_logged_at >= self.progress_log_interval_s:
            self._progress_logged_at = now
            p = self.progress()
            eta = "unknown" if p.eta_s is None else f"{p.eta_s:.0f} s"
            log.info("restoring tables: %d changelog records restored, %d remaining, "
                     "%.0f records/s, ready in about %s", p.records_restored,
                     p.records_remaining, p.records_per_s, eta)

    def restore_complete(self) -> bool:
        """Every active partition's changelog read up to its highwater, as this recovery
        built them: not while a new rebalance is signalled (it rebuilds the highwaters and
        offsets), nor before they are built, nor while an active partition has none (Faust's
        ``need_recovery`` counts only the partitions with a highwater). Otherwise Faust's
        loop ends the restore at its next look."""
        if self.signal_recovery_start.is_set() or not self._remaining_known:
            return False
        highwaters = self.active_highwaters
        if any(tp not in highwaters for tp in self.active_tps):
            return False
        return not self.need_recovery()

    def _after_standby_apply(self) -> None:
        if (self._standbys_span is None and not self.tables.standbys_ready
                and self.standby_highwaters and not self.standby_remaining_total()):
            self.tables.on_standbys_ready()

    def _elapsed(self) -> float:
        started = self._restore_started_at
        return time.monotonic() - started if started is not None else 0.0

    def progress(self) -> RestoreProgress:
        """The restore's figures now (cheap: a sum over the assigned partitions)."""
        remaining: int | None = 0
        if self.in_recovery:
            remaining = (max(0, self.active_remaining_total()) if self._remaining_known
                         else None)
        elapsed = self._elapsed()
        rate = self.records_restored / elapsed if elapsed > 0 else 0.0
        eta = remaining / rate if rate > 0 and remaining is not None else None
        return RestoreProgress(bool(self.in_recovery), self.records_restored,
                               self.records_restored_total, remaining, rate, eta,
                               self.standby_records_applied)


class BatchedTableManager(GatedTableManager):
    """Faust's table manager with :class:`BatchedRecovery` as its recovery service."""

    recovery_class = BatchedRecovery
