"""The raw key/value pairs of one partition of a table's local RocksDB store.

Changes: reads ``RocksDBStore._dbs`` and ``RocksDBStore._visible_items`` (private in
faust-streaming) instead of ``table.items()``, which iterates every partition's database
and decodes every key and value through the serializer registry.

Why: after a rebalance the open-circle gauge rebuilds one partition's count from the
local store, and the silence check reads the ``journey-due`` index of each partition it
runs in key order, stopping at the first deadline not yet due; a scan of that partition
alone, lazy and in RocksDB's key order, decoding only the values that can matter, is what
the job needs. Upstream candidate: a public ``Store.items(partition=...)`` that
yields raw bytes.

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def partition_items(table: Any, partition: int) -> Iterator[tuple[bytes, bytes]] | None:
    """Raw (key, value) bytes of ``partition`` in the table's RocksDB store, lazily and in
    key order; ``None`` for any other store (the caller then scans ``table.items()``)."""
    store = table.data
    dbs = getattr(store, "_dbs", None)
    if dbs is None:
        return None
    db = dbs.get(partition)
    if db is None:
        return iter(())
    return iter(store._visible_items(db))
