"""Reading and writing the service's Faust tables on the hot path.

The tables hold str keys (Faust's ``json`` codec, which is orjson) and values that are
bytes to Faust (declared with ``value_type=bytes``, so Faust's serializer for them in the
store, the changelog topic and the restore is ``raw``): each table's values are encoded
and decoded by the codec the domain gives it (:func:`typed_table`; ``encode``/``decode``,
see ``agents.domain.codec``), here and nowhere else, so the bytes are exactly the bytes
Faust's own table API, its changelog and its restore carry. What this module leaves out
of that API, per access:

* ``Table.get`` (and ``in``, and ``pop``) asks the store whether the key exists and then
  reads it: two RocksDB lookups. :func:`stored` makes one, in the current event's
  partition's database, without updating Faust's key-to-partition cache (a lock-guarded
  LRU that only reads from outside an event use; those find the key without it).
* Each key and value goes through Faust's serializer registry and schema (model
  detection, codec lookup); here it is ``orjson.dumps`` for the key and the table's
  codec for the value.
* A write's changelog record goes through
  :class:`streams.faust_ext.changelog_writer.ChangelogWriter` (handed to the producer in
  runs) instead of Faust's per-record producer buffer.

The partition is the current event's, exactly as the table takes it. Outside an event, and
for stores that keep Python objects rather than bytes (``memory://``, for tests), these go
through the table's own API.

Changes: reads ``RocksDBStore._db_for_partition`` (private in faust-streaming). Upstream
candidate: a ``Table.get`` that makes one store lookup, and a raw-bytes table access.

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import orjson
from faust import current_event
from faust.stores import rocksdb as rocksdb_store
from faust.types import CollectionT

from streams.faust_ext.changelog_writer import writer_of


class ValueCodec(Protocol):
    def encode(self, value: Any) -> bytes: ...
    def decode(self, raw: bytes) -> Any: ...


class JsonValues:
    """The values of a table given no codec: JSON, as Faust's ``json`` codec writes it."""

    encode = staticmethod(orjson.dumps)
    decode = staticmethod(orjson.loads)


CODEC_ATTR = "_mot_value_codec"


def typed_table(table: CollectionT, codec: ValueCodec) -> CollectionT:
    """Give a table declared with ``value_type=bytes`` the codec of its values."""
    if table.value_serializer != "raw":
        raise TypeError(f"table {table.name}: declare it with value_type=bytes")
    setattr(table, CODEC_ATTR, codec)
    return table


def codec_of(table: CollectionT) -> ValueCodec:
    return getattr(table, CODEC_ATTR, JsonValues)


def _partition_db(table: CollectionT) -> tuple[Any, int] | None:
    """The RocksDB database of the current event's partition, and that partition; None
    outside an event or for a store that does not keep bytes."""
    data = table.data
    if not isinstance(data, rocksdb_store.Store) or table.app.in_transaction:
        return None
    event = current_event()
    if event is None:
        return None
    partition = event.message.partition
    return data._db_for_partition(partition), partition


def stored(table: CollectionT, key: Any) -> Any | None:
    """The value stored under ``key``, or None when there is none."""
    found = _partition_db(table)
    raw = table.data.get(key) if found is None else found[0].get(orjson.dumps(key))
    return None if raw is None else codec_of(table).decode(raw)


def stored_items(table: CollectionT) -> Iterator[tuple[Any, Any]]:
    """Every (key, value) of the table's local store, decoded."""
    decode = codec_of(table).decode
    for key, raw in table.items():
        if raw is not None:
            yield key, decode(raw)


def store(table: CollectionT, key: Any, value: Any) -> None:
    """Write ``key`` = ``value`` to the store and queue its changelog record."""
    found = _partition_db(table)
    v = codec_of(table).encode(value)
    if found is None:
        table[key] = v
        return
    db, partition = found
    k = orjson.dumps(key)
    db.put(k, v)
    writer_of(table.app).add_encoded(table, partition, k, v)


def stored_at(table: CollectionT, partition: int, key: Any) -> Any | None:
    """The value stored under ``key`` in ``partition``, outside an event (see
    :func:`store_at`); None when there is none."""
    data = table.data
    if isinstance(data, rocksdb_store.Store):
        raw = data._db_for_partition(partition).get(orjson.dumps(key))
    else:
        raw = data.get(key)
    return None if raw is None else codec_of(table).decode(raw)


def store_at(table: CollectionT, partition: int, key: Any, value: Any) -> None:
    """Write ``key`` = ``value`` in ``partition`` outside an event (a timer repairing an
    index): the store and the changelog record, as :func:`store` writes them. For a store
    that keeps Python objects (``memory://``, tests) the store alone."""
    data = table.data
    v = codec_of(table).encode(value)
    if not isinstance(data, rocksdb_store.Store):
        data[key] = v
        return
    k = orjson.dumps(key)
    data._db_for_partition(partition).put(k, v)
    writer_of(table.app).add_encoded(table, partition, k, v)


def discard(table: CollectionT, key: Any) -> None:
    """Delete ``key`` (and queue its tombstone) if it is stored."""
    found = _partition_db(table)
    if found is None:
        if table.data.get(key) is not None:
            del table[key]
        return
    db, partition = found
    k = orjson.dumps(key)
    if db.get(k) is not None:
        db.delete(k)
        writer_of(table.app).add_encoded(table, partition, k, None)
