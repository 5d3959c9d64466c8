"""Table changelog records handed to the producer in runs instead of one at a time.

Faust sends the changelog record of every table write through ``Topic.send_soon``: a
``FutureMessage`` put in the producer's ``ProducerBuffer``, which one task drains by
awaiting a publish per record, each with a callback that writes the changelog offset
into RocksDB (the "persisted offset" that tells a restart where the local store is up
to). The conductor stops delivering records while that buffer holds more than 100, so a
worker that writes on every record is paced by that single task; with batch delivery
(:mod:`streams.faust_ext.batch_delivery`) a whole batch of writes lands in the buffer at once and
the agent waits on it in steps of 100.

:class:`DirectChangelogTable` keeps Faust's table (the store write, the partition from
the current event, TTL and sensors) and changes only where its changelog record goes: a
:class:`ChangelogWriter` encodes it with the table's own serializers and queues it; the
writer hands the queued records to the producer in one run (:meth:`ChangelogWriter.flush`:
in order, under a lock, so a key's records keep their order; a key written again while its
record is still queued replaces that record, as a compacted changelog would keep only the
last value; through :func:`streams.faust_ext.batch_produce.send_records`), and sets each changelog
partition's persisted offset once per run, from the run's last record to it, when the
broker has acknowledged it. Records of one partition are acknowledged in order, so that
offset covers the run's earlier records as well.

The run is flushed as soon as the event loop is free, at the end of each input batch
(the scoring agent awaits it before the batch is acked), and, through
:class:`FlushingProducer`, by every offset commit: Faust commits only after
``producer.flush()``, so no input offset is committed before the changelog records of
the writes it caused are with the broker, as before.

Under ``exactly_once`` the table falls back to Faust's path: there the persisted offset
must be written at the transaction's commit, which Faust's own callback arranges.

Every changelog topic is created with the app's ``changelog_topic_configs`` (its
compaction settings) beneath a table's own ``extra_topic_configs``.

Changes: ``Table.__init__`` (the topic configs), ``Table._new_store`` (RocksDB opened with
:mod:`streams.faust_ext.store_options`),
``Table.on_key_set``/``on_key_del`` and the producer's ``flush``. Upstream candidate: a
batched changelog path in ``faust.tables.base``.

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any

import faust
from faust.stores import rocksdb as rocksdb_store
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.faust_ext.batch_produce import Sent, send_records
from streams.faust_ext.store_options import StoreSettings, store_options_of

log = logging.getLogger(__name__)


class ChangelogWriter:
    """The app's queue of changelog records not yet handed to the producer."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        # Per (table, partition, key) the latest record: a key written again before the
        # flush replaces its queued record (its changelog needs only the last value).
        self._pending: dict[tuple[int, int, bytes], tuple[Any, str, int, bytes, Any]] = {}
        self.coalesced = 0  # records replaced before they were sent (for the benchmark)
        self._lock = asyncio.Lock()
        self._scheduled = False
        self._task: asyncio.Future[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, table: Any, partition: int, key: Any, value: Any,
            value_serializer: Any = None) -> None:
        """Queue the changelog record of ``key`` (``value`` None: a tombstone)."""
        topic = table.changelog_topic
        k, _ = topic.prepare_key(key, table.key_serializer)
        v = None
        if value is not None:
            v, _ = topic.prepare_value(value, value_serializer or table.value_serializer)
        self.add_encoded(table, partition, k, v)

    def add_encoded(self, table: Any, partition: int, key: bytes, value: bytes | None) -> None:
        """Queue a changelog record whose key and value are already serialized; one still
        queued for the same key is replaced (last value wins)."""
        slot = (id(table), partition, key)
        pending = self._pending
        if slot in pending:
            del pending[slot]  # re-queued at the end: the run stays in write order
            self.coalesced += 1
        pending[slot] = (table, table.changelog_topic.get_topic_name(), partition, key, value)
        if not self._scheduled:
            self._scheduled = True
            self._task = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # the producer is broken: stop as Faust's buffer would
            log.exception("changelog records could not be handed to the producer")
            await self.app.crash(exc)

    async def flush(self) -> None:
        """Hand the records queued so far to the producer, in the order they were written.

        Records queued while this runs are left to the next flush (one is scheduled): a
        busy agent keeps writing, and a flush that waited for an empty queue would hold
        back the commit that waits for it.
        """
        async with self._lock:
            self._scheduled = False
            run, self._pending = self._pending, {}
            if not run:
                return
            tables = {(topic, p): table for table, topic, p, _, _ in run.values()}
            sent = await send_records(self.app, ((topic, partition, k, v)
                                                 for _, topic, partition, k, v in run.values()))
            last: dict[tuple[str, int], Sent] = {}
            for batch in sent:
                last[(batch.topic, batch.partition)] = batch
            for batch in last.values():
                batch.future.add_done_callback(
                    partial(_persist_offset, tables[(batch.topic, batch.partition)],
                            batch.count - 1))


def _persist_offset(table: Any, last: int, fut: asyncio.Future[Any]) -> None:
    """Record in the store how far its changelog partition is (as Faust's callback does):
    ``fut`` is a batch's, resolved with its first record's offset; ``last`` is its last
    record's index in it."""
    if fut.cancelled() or fut.exception() is not None:
        return  # the producer reports the failure; the store keeps its older offset
    res = fut.result()
    table.data.set_persisted_offset(res.topic_partition, res.offset + last)


def writer_of(app: Any) -> ChangelogWriter:
    writer = getattr(app, "_changelog_writer", None)
    if writer is None:
        writer = app._changelog_writer = ChangelogWriter(app)
    return writer


async def flush_changelogs(app: Any) -> None:
    """Hand the changelog records of the writes so far to the producer."""
    await writer_of(app).flush()


class DirectChangelogTable(faust.Table):
    """A Faust table whose changelog records go through the app's :class:`ChangelogWriter`.

    Its RocksDB store is opened with :class:`streams.faust_ext.store_options.StoreOptions`
    (no write-ahead log: the changelog topic is the log; the app's compression and block
    size).
    """

    def __init__(self, app: Any, *, extra_topic_configs: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:
        # The app's changelog topic settings (compaction), under the table's own ones.
        configs = {**getattr(app, "changelog_topic_configs", {}), **(extra_topic_configs or {})}
        super().__init__(app, extra_topic_configs=configs, **kwargs)

    def _new_store(self) -> Any:
        store = super()._new_store()
        if isinstance(store, rocksdb_store.Store) and not self.app.in_transaction:
            settings = getattr(self.app, "store_settings", StoreSettings())
            store.rocksdb_options = store_options_of(store, settings)
        return store

    def on_key_set(self, key: Any, value: Any) -> None:
        partition = self.partition_for_key(key)
        if partition is None or self.app.in_transaction:
            return super().on_key_set(key, value)
        writer_of(self.app).add(self, partition, key, value)
        self._maybe_set_key_ttl(key, partition)
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        partition = self.partition_for_key(key)
        if partition is None or self.app.in_transaction:
            return super().on_key_del(key)
        writer_of(self.app).add(self, partition, key, None, "raw")
        self._maybe_del_key_ttl(key, partition)
        self._sensor_on_del(self, key)


class FlushingProducer(faust_aiokafka.Producer):
    """Faust's producer; a flush (before every commit, and at shutdown) takes the queued
    changelog records first."""

    async def flush(self) -> None:
        writer = getattr(self.app, "_changelog_writer", None)
        if writer is not None:
            await writer.flush()
        await super().flush()

