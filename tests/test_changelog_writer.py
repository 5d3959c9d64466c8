"""Table writes on the hot path: the same bytes as Faust's table API, changelog records
handed to the producer in write order, the persisted offset kept per changelog partition,
and no commit before the queued records are with the producer."""

from __future__ import annotations

import asyncio
import weakref
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from faust.stores import rocksdb as rocksdb_store
from faust.streams import _current_event

from streams.faust_ext.changelog_writer import (
    ChangelogWriter,
    FlushingProducer,
    writer_of,
)
from streams.faust_ext.table_access import discard, store, stored


class Builder:
    """aiokafka's ``BatchBuilder`` as far as the writer uses it: full after ``capacity``."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.records: list[tuple[bytes, bytes | None]] = []

    def append(self, *, timestamp: Any, key: bytes, value: bytes | None) -> Any:
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()


class Producer:
    """Records what is sent, batch by batch; each batch's future resolves like aiokafka's
    (the offset of its first record), in order. ``sent`` lists every record."""

    def __init__(self, batch_capacity: int = 1000) -> None:
        self.batch_capacity = batch_capacity
        self.sent: list[tuple[str, bytes, bytes | None, int]] = []
        self.batches: list[tuple[int, asyncio.Future[Any]]] = []  # (first index, future)

    def _ensure_producer(self) -> Producer:  # the aiokafka producer: this fake itself
        return self

    def key_partition(self, topic: str, key: bytes) -> Any:
        return SimpleNamespace(topic=topic, partition=len(key) % 3)

    def create_batch(self) -> Builder:
        return Builder(self.batch_capacity)

    async def send_batch(self, batch: Builder, topic: str, *, partition: int
                         ) -> asyncio.Future[Any]:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.batches.append((len(self.sent), fut))
        self.sent.extend((topic, k, v, partition) for k, v in batch.records)
        return fut

    async def send(self, topic: str, value: bytes | None, *, key: bytes, partition: int
                   ) -> asyncio.Future[Any]:
        """aiokafka's per-record send: a future of its own."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.batches.append((len(self.sent), fut))
        self.sent.append((topic, key, value, partition))
        return fut

    def acknowledge(self, fail: bool = False) -> None:
        """The broker answers every pending batch; a record's offset is its index."""
        for first, fut in self.batches:
            if fut.done():
                continue
            if fail:
                fut.set_exception(RuntimeError("broker gone"))
            else:
                topic, _, _, partition = self.sent[first]
                fut.set_result(SimpleNamespace(
                    topic_partition=SimpleNamespace(topic=topic, partition=partition),
                    offset=first))


class Store(rocksdb_store.Store):
    """A RocksDB store's partition databases as dicts, with their persisted offsets."""

    def __init__(self) -> None:  # no files, no Service machinery
        self.dbs: dict[int, dict[bytes, bytes]] = {}
        self.persisted: dict[int, int] = {}

    def _db_for_partition(self, partition: int) -> Any:
        return DB(self.dbs.setdefault(partition, {}))

    def set_persisted_offset(self, tp: Any, offset: int) -> None:
        self.persisted[tp.partition] = offset


class DB:
    def __init__(self, rows: dict[bytes, bytes]) -> None:
        self.rows = rows
        self.get, self.put = rows.get, rows.__setitem__

    def delete(self, key: bytes) -> None:
        del self.rows[key]


class Event:
    def __init__(self, message: Any) -> None:
        self.message = message


class Table:
    def __init__(self, app: Any, name: str, partition: int) -> None:
        self.app = app
        self.data = Store()
        self.partition = partition
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: f"{name}-changelog")

    def handling(self) -> None:
        """Make the current event a record of this table's partition."""
        self._event = Event(SimpleNamespace(partition=self.partition))
        _current_event.set(weakref.ref(self._event))  # Faust holds a weak reference

    # The agent's calls, made while it handles a record of this table's partition.
    def put(self, key: Any, value: Any) -> None:
        self.handling()
        store(self, key, value)  # type: ignore[arg-type]

    def get(self, key: Any) -> Any:
        self.handling()
        return stored(self, key)  # type: ignore[arg-type]

    def drop(self, key: Any) -> None:
        self.handling()
        discard(self, key)  # type: ignore[arg-type]

    def rows(self) -> dict[bytes, bytes]:
        return self.data.dbs.get(self.partition, {})


@pytest.fixture(params=[True, False], ids=["send_batch", "send"])
def app(request: Any) -> Any:
    """Both producer paths (``MOT_PRODUCE_BATCHES``): the same records, order and offsets."""
    return SimpleNamespace(producer=Producer(), in_transaction=False,
                           produce_batches=request.param)


async def test_a_stored_value_reads_back_and_is_written_as_faust_json(app: Any) -> None:
    t = Table(app, "customer-state", 3)
    assert t.get("c-1") is None
    t.put("c-1", {"score": -0.5, "journeys": {"open": {}}, "name": "Zoë"})
    assert t.get("c-1") == {"score": -0.5, "journeys": {"open": {}}, "name": "Zoë"}
    # Faust's json codec is orjson: the same key and value bytes as table[key] = value.
    assert t.rows() == {b'"c-1"': orjson.dumps(
        {"score": -0.5, "journeys": {"open": {}}, "name": "Zoë"})}


async def test_changelog_records_reach_the_producer_in_write_order(app: Any) -> None:
    t = Table(app, "customer-state", 3)
    for i in range(5):
        t.put(f"c-{i}", {"n": i})
    t.drop("c-1")
    t.drop("c-9")  # never stored: no tombstone
    await writer_of(app).flush()
    assert app.producer.sent == (
        [("customer-state-changelog", f'"c-{i}"'.encode(), orjson.dumps({"n": i}), 3)
         for i in (0, 2, 3, 4)]
        + [("customer-state-changelog", b'"c-1"', None, 3)])
    assert t.get("c-1") is None


async def test_a_key_written_again_before_the_flush_sends_only_its_last_value(app: Any) -> None:
    t = Table(app, "customer-state", 3)
    for i in range(5):
        t.put("c-1", {"n": i})
    t.put("c-2", {"n": 0})
    t.drop("c-2")
    await writer_of(app).flush()
    assert app.producer.sent == [("customer-state-changelog", b'"c-1"', orjson.dumps({"n": 4}), 3),
                                 ("customer-state-changelog", b'"c-2"', None, 3)]
    assert writer_of(app).coalesced == 5
    assert t.get("c-1") == {"n": 4}


async def test_a_run_larger_than_a_batch_goes_in_several_batches_in_order(app: Any) -> None:
    app.producer.batch_capacity = 4
    t = Table(app, "customer-state", 2)
    for i in range(10):
        t.put(f"c-{i}", {"n": i})
    await writer_of(app).flush()
    assert [orjson.loads(v)["n"] for _, _, v, _ in app.producer.sent] == list(range(10))
    batches = [first for first, _ in app.producer.batches]
    assert batches == ([0, 4, 8] if app.produce_batches else list(range(10)))
    app.producer.acknowledge()
    await asyncio.sleep(0)
    assert t.data.persisted == {2: 9}  # the run's last record, from the last batch


async def test_records_are_handed_over_as_soon_as_the_loop_is_free(app: Any) -> None:
    t = Table(app, "stream-clock", 0)
    t.put("0", [1.0, 2.0])
    assert app.producer.sent == []
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(app.producer.sent) == 1
    assert writer_of(app).pending == 0


async def test_the_persisted_offset_follows_each_changelog_partition(app: Any) -> None:
    a, b = Table(app, "customer-state", 1), Table(app, "customer-state", 4)
    deadlines = Table(app, "journey-deadlines", 1)
    for i in range(3):
        a.put(f"c-{i}", {"n": i})
        b.put(f"d-{i}", {"n": i})
    deadlines.put("c-0", [10.0, 1])
    await writer_of(app).flush()
    assert a.data.persisted == {} and b.data.persisted == {}  # not before the broker acks
    app.producer.acknowledge()
    await asyncio.sleep(0)
    # one batch per changelog partition: a's records are 0-2, b's 3-5, the deadline's 6
    assert a.data.persisted == {1: 2}  # the last record a's partition got
    assert b.data.persisted == {4: 5}
    assert deadlines.data.persisted == {1: 6}


async def test_a_failed_send_leaves_the_persisted_offset_where_it_was(app: Any) -> None:
    t = Table(app, "customer-state", 0)
    t.put("c-1", {"n": 1})
    await writer_of(app).flush()
    app.producer.acknowledge(fail=True)
    await asyncio.sleep(0)
    assert t.data.persisted == {}


async def test_a_commit_waits_for_the_queued_records(app: Any) -> None:
    """Faust commits offsets only after ``producer.flush()``: that flush takes the queue."""
    t = Table(app, "customer-state", 2)
    t.put("c-1", {"n": 1})
    flushed: list[int] = []

    async def buffer_flush() -> None:  # Faust's own flush starts with its send buffer
        flushed.append(len(app.producer.sent))

    producer: Any = object.__new__(FlushingProducer)
    producer.__dict__.update(app=app, buffer=SimpleNamespace(flush=buffer_flush),
                             _producer=None, _transaction_producers={})
    await producer.flush()
    assert flushed == [1]  # the record was with the producer before its own flush ran


async def test_concurrent_flushes_keep_the_write_order(app: Any) -> None:
    t = Table(app, "customer-state", 0)
    writer = ChangelogWriter(app)
    app._changelog_writer = writer
    for i in range(50):
        t.put("c-1", {"n": i})
    first = asyncio.ensure_future(writer.flush())
    await asyncio.sleep(0)
    for i in range(50, 60):
        t.put("c-1", {"n": i})
    await asyncio.gather(first, writer.flush())
    # each flush sends the key's last value of its run, the earlier run first
    assert [orjson.loads(v)["n"] for _, _, v, _ in app.producer.sent] == [49, 59]
