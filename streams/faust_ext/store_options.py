"""The RocksDB options of the tables' local stores: no write-ahead log, compressed blocks.

Faust opens every table partition's RocksDB with RocksDB's write-ahead log on, 4 KiB data
blocks and RocksDB's default compression (snappy). The service's stores differ in two
ways:

* **No write-ahead log**, as Kafka Streams' stores: the changelog topic is the log.
  After a crash the store holds a prefix of its writes, the persisted offset included
  (it is written to the same database after the writes it covers), and the restore
  replays the changelog from that offset.
* **Compression and block size** from ``MOT_STORE_COMPRESSION`` and ``MOT_STORE_BLOCK_BYTES``
  (defaults zstd, 16 KiB). The customer states of many customers share their touchpoint
  names, id prefixes and time prefixes; a larger block gives the compressor more of them
  at once. RocksDB records each file's compression in the file, so a store written with
  other settings (or Faust's) is read as it is, and its files are rewritten with these
  as RocksDB compacts them.

Changes: ``RocksDBOptions.open`` (as Faust opens a rocksdict store, but with the options
given for the default column family as well: otherwise rocksdict reopens an existing
store with the options it was created with) and ``RocksDBOptions.as_options`` (the table
factory rebuilt as Faust builds it, with the block size added). Upstream candidate: block size
and compression in ``RocksDBOptions`` (Faust passes ``extra_options`` only to
python-rocksdb, not to rocksdict).

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faust.stores import rocksdb as rocksdb_store

try:
    import rocksdict
except ImportError:  # pragma: no cover - the memory store needs no RocksDB
    rocksdict = None


@dataclass(frozen=True)
class StoreSettings:
    """What the app sets for its stores (``app.store_settings``)."""

    compression: str = "zstd"  # zstd, lz4, snappy or none
    block_bytes: int = 16384


def compression_type(name: str) -> Any:
    """rocksdict's compression type of a ``MOT_STORE_COMPRESSION`` name."""
    kinds = {"zstd": rocksdict.DBCompressionType.zstd, "lz4": rocksdict.DBCompressionType.lz4,
             "snappy": rocksdict.DBCompressionType.snappy,
             "none": rocksdict.DBCompressionType.none}
    if name not in kinds:
        raise ValueError(f"unknown store compression {name!r}: one of {', '.join(kinds)}")
    return kinds[name]()


class StoreOptions(rocksdb_store.RocksDBOptions):
    """Faust's RocksDB options, without the write-ahead log, with ``settings``' blocks."""

    settings: StoreSettings = StoreSettings()

    def open(self, path: Any, *, read_only: bool = False) -> Any:
        if not self.use_rocksdict:  # pragma: no cover - python-rocksdb is not installed here
            return super().open(path, read_only=read_only)
        access = (rocksdict.AccessType.read_write() if self.ttl is None
                  else rocksdict.AccessType.with_ttl(self.ttl))
        # The options of the default column family too: given only ``options``, rocksdict
        # reopens an existing store with the options in its OPTIONS file.
        db = rocksdict.Rdict(str(path), options=self.as_options(),
                             column_families={"default": self.as_options()},
                             access_type=access)
        db.set_read_options(rocksdict.ReadOptions())
        writes = rocksdict.WriteOptions()
        writes.disable_wal = True
        db.set_write_options(writes)
        return db

    def as_options(self) -> Any:
        options = super().as_options()
        if not self.use_rocksdict:  # pragma: no cover - python-rocksdb is not installed here
            return options
        table = rocksdict.BlockBasedOptions()  # as Faust builds it, plus the block size
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(rocksdict.Cache(self.block_cache_size))
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        table.set_block_size(self.settings.block_bytes)
        options.set_block_based_table_factory(table)
        kind = compression_type(self.settings.compression)
        options.set_compression_type(kind)
        options.set_bottommost_compression_type(kind)
        return options


def store_options_of(store: Any, settings: StoreSettings) -> StoreOptions:
    """The store's Faust options as :class:`StoreOptions` with ``settings``."""
    opts = store.rocksdb_options
    ours = StoreOptions(use_rocksdict=opts.use_rocksdict, ttl=opts.ttl, **opts.extra_options)
    ours.__dict__.update(opts.__dict__)
    ours.settings = settings
    return ours
