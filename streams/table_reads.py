"""Reading a Faust table key with one store lookup.

``Table.get`` (and ``in``, and ``pop``) on a RocksDB-backed table asks the store whether
the key exists and then reads it: two RocksDB lookups for every read. The agents read on
every event, so they read the store directly: one lookup, the same value (the store
finds the partition from the current event exactly as the table does).
"""

from __future__ import annotations

from typing import Any

from faust.types import CollectionT


def stored(table: CollectionT, key: Any) -> Any | None:
    """The value stored under ``key``, or None when there is none."""
    return table.data.get(key)


def discard(table: CollectionT, key: Any) -> None:
    """Delete ``key`` (and send its tombstone to the changelog) if it is stored."""
    if table.data.get(key) is not None:
        del table[key]
