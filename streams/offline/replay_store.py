"""Customers' states during a replay: the hot ones in memory, the rest in a local RocksDB.

A replay must not need memory in proportion to its customers. The states of the
``capacity`` customers used most recently stay in an LRU in memory, *encoded* by the
customer state's codec (the bytes the table stores and the spill store holds: a fraction
of the state's size as Python objects, so the same memory holds several times the
customers, and a replay of a few hundred thousand customers never reads the disk). The
least recently used ones go, in write batches, to a RocksDB store in a temporary
directory (removed by :meth:`CustomerStates.close`) and come back when their customer
shows up again. Only the process that owns the customers (one replay worker) touches its
store.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agents.domain.customer_state import CustomerState, decode_state, encode_state

MEMTABLE_BYTES = 4 << 20  # writes come in batches of evicted states: small memtables do
BLOCK_CACHE_BYTES = 8 << 20
SPILL_BATCH = 512  # states written to the store at once, at most (one write batch)


class CustomerStates:
    """customer id → state, at most ``capacity`` of them in memory (encoded)."""

    def __init__(self, capacity: int, spill_dir: str = "") -> None:
        self.capacity = max(1, capacity)
        self._batch = max(1, min(SPILL_BATCH, self.capacity // 16))
        self._spill_dir = spill_dir or None
        self._hot: OrderedDict[str, bytes] = OrderedDict()
        self._db: Any = None  # rocksdict.Rdict, opened on the first spill
        self._dir: Path | None = None
        self._missed: str | None = None  # the last customer looked up and not found
        self.customers = 0
        self.spilled = 0  # states written to the store (evictions)
        self.loaded = 0  # states read back from it

    def _store(self) -> Any:
        if self._db is None:
            from rocksdict import BlockBasedOptions, Cache, Options, Rdict, WriteOptions

            self._dir = Path(tempfile.mkdtemp(prefix="mot-replay-", dir=self._spill_dir))
            opts = Options(raw_mode=True)
            opts.set_write_buffer_size(MEMTABLE_BYTES)  # RocksDB's own memory, bounded too
            opts.set_max_write_buffer_number(2)
            table = BlockBasedOptions()
            table.set_block_cache(Cache(BLOCK_CACHE_BYTES))
            table.set_bloom_filter(10, False)  # most look-ups are of new customers: misses
            opts.set_block_based_table_factory(table)
            self._db = Rdict(str(self._dir / "states"), opts)
            wo = WriteOptions()
            wo.disable_wal = True  # a scratch store: nothing to recover after a crash
            self._db.set_write_options(wo)
        return self._db

    def get(self, customer_id: str) -> CustomerState | None:
        hot = self._hot
        raw = hot.get(customer_id)
        if raw is not None:
            hot.move_to_end(customer_id)
            return decode_state(raw)
        if self._db is not None:
            raw = self._db.get(customer_id.encode())
            if raw is not None:
                self.loaded += 1
                self._keep(customer_id, raw)
                return decode_state(raw)
        self._missed = customer_id
        return None

    def put(self, customer_id: str, state: CustomerState) -> None:
        if customer_id == self._missed:  # looked up just before and new
            self.customers += 1
            self._missed = None
        elif customer_id not in self._hot and self.get(customer_id) is None:
            self.customers += 1  # written without a look-up first
            self._missed = None
        self._keep(customer_id, encode_state(state))

    def _keep(self, customer_id: str, raw: bytes) -> None:
        hot = self._hot
        hot[customer_id] = raw
        hot.move_to_end(customer_id)
        if len(hot) > self.capacity:
            self._spill(len(hot) - self.capacity + self._batch - 1)

    def _spill(self, n: int) -> None:
        """The ``n`` least recently used states to the store, in one write batch."""
        from rocksdict import WriteBatch

        db = self._store()
        hot = self._hot
        batch = WriteBatch(raw_mode=True)
        for _ in range(min(n, len(hot))):
            cid, raw = hot.popitem(last=False)
            batch.put(cid.encode(), raw)
            self.spilled += 1
        db.write(batch)

    def __len__(self) -> int:
        return self.customers

    def in_order(self) -> Iterator[tuple[str, CustomerState]]:
        """Every customer's state, by customer id (UTF-8 byte order = code point order);
        the hot states are written to the store first, when there is one."""
        if self._db is None:
            for cid in sorted(self._hot):
                yield cid, decode_state(self._hot[cid])
            return
        while self._hot:
            spilled = self.spilled
            self._spill(self._batch)
            self.spilled = spilled  # written for the ordered read, not evicted
        for key, raw in self._db.items():
            yield key.decode(), decode_state(raw)

    def close(self) -> None:
        """Close and delete the store (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        self._hot.clear()
