"""Reading and writing the service's Faust tables on the hot path.

The tables hold str keys and JSON values (Faust's ``json`` codec, which is orjson), so
the bytes here are exactly the bytes Faust's own table API reads and writes. What this
module leaves out of that API, per access:

* ``Table.get`` (and ``in``, and ``pop``) asks the store whether the key exists and then
  reads it: two RocksDB lookups. :func:`stored` makes one, in the current event's
  partition's database, without updating Faust's key-to-partition cache (a lock-guarded
  LRU that only reads from outside an event use; those find the key without it).
* Each key and value goes through Faust's serializer registry and schema (model
  detection, codec lookup); here it is ``orjson.dumps``/``orjson.loads``.
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

from typing import Any

import orjson
from faust import current_event
from faust.stores import rocksdb as rocksdb_store
from faust.types import CollectionT

from streams.faust_ext.changelog_writer import writer_of


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
    if found is None:
        return table.data.get(key)
    raw = found[0].get(orjson.dumps(key))
    return None if raw is None else orjson.loads(raw)


def store(table: CollectionT, key: Any, value: Any) -> None:
    """Write ``key`` = ``value`` to the store and queue its changelog record."""
    found = _partition_db(table)
    if found is None:
        table[key] = value
        return
    db, partition = found
    k = orjson.dumps(key)
    v = orjson.dumps(value)
    db.put(k, v)
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
