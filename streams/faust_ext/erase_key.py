"""Erasing one key of a table for good: local store, key index, changelog, disk.

Changes: beyond ``del table[key]`` (which only sends a tombstone when the key is found
locally), this always queues a tombstone for the key in the current event's partition
of the changelog (so compaction removes every earlier record of it, even one whose local
write was lost in a crash), drops the key from ``RocksDBStore._key_index`` (private in
faust-streaming: the LRU of which partition holds a key, filled by reads outside an
event such as ``GET /customers/{id}``) and compacts the key's range of that partition's
RocksDB database, bottom level included, so neither the value nor the key is in its
files any more (a RocksDB delete only writes a marker, holding the key, over the old
value until a compaction rewrites the files).

Why: a customer's right to be forgotten (``agents/erasure.py``). Upstream candidate: a
``Table.erase(key)`` that tombstones unconditionally and purges the store.

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from faust import current_event
from faust.stores import rocksdb as rocksdb_store

from streams.faust_ext.changelog_writer import writer_of

try:
    from rocksdict import BottommostLevelCompaction, CompactOptions
except ImportError:  # pragma: no cover - the memory store needs no RocksDB
    BottommostLevelCompaction = CompactOptions = None

log = logging.getLogger(__name__)


def erase(table: Any, key: Any) -> int:
    """Remove ``key`` from the table in the current event's partition; 1 if it held a
    value, else 0. The tombstone is queued either way."""
    event = current_event()
    data = table.data
    if event is None or not isinstance(data, rocksdb_store.Store):
        # memory:// (tests) or no event: the table's own API (tombstone only if found)
        if data.get(key) is None:
            return 0
        del table[key]
        return 1
    partition = event.message.partition
    db = data._db_for_partition(partition)
    k = orjson.dumps(key)
    found = db.get(k) is not None
    db.delete(k)
    data._key_index.pop(k, None)
    writer_of(table.app).add_encoded(table, partition, k, None)
    try:
        _purge(db, k)
    except Exception:  # compaction is best effort: RocksDB compacts the range later anyway
        log.warning("could not compact %s[%s] after an erasure", table.name, partition,
                    exc_info=True)
    return 1 if found else 0


def _purge(db: Any, key: bytes) -> None:
    """Flush the memtable and rewrite every file holding ``key``, the bottom level too:
    without ``force`` RocksDB may just move a file down a level, the delete marker (which
    holds the key) and older values with it."""
    db.flush()
    if CompactOptions is None:
        db.compact_range(key, key + b"\x00")
        return
    options = CompactOptions()
    options.set_bottommost_level_compaction(BottommostLevelCompaction.force())
    db.compact_range(key, key + b"\x00", options)
