"""The tables' RocksDB stores: no write-ahead log, and the configured compression."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest

from streams.faust_ext.store_options import StoreOptions, StoreSettings, store_options_of
from streams.settings import Settings, SettingsError

REPO = Path(__file__).resolve().parents[1]


def options(compression: str = "zstd", block_bytes: int = 16384) -> StoreOptions:
    opts = StoreOptions()
    opts.settings = StoreSettings(compression, block_bytes)
    return opts


def test_the_store_skips_rocksdbs_log_and_keeps_its_writes_over_a_graceful_close(
        tmp_path: Path) -> None:
    """The changelog is the log: a graceful stop flushes the store; a kill -9 loses its
    unflushed writes (persisted offset included), which the restore reads back."""
    path = tmp_path / "customer-state-0.db"
    script = (
        "import os, sys\n"
        "from streams.faust_ext.store_options import StoreOptions\n"
        "db = StoreOptions().open(sys.argv[1])\n"
        "db.put(b'k', b'v')\n"
        "if sys.argv[2] == 'kill': os.kill(os.getpid(), 9)\n"
        "del db\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path), "kill"], check=False, cwd=REPO)
    db = StoreOptions().open(path)
    assert db.get(b"k") is None  # no write-ahead log to replay
    del db
    gc.collect()
    subprocess.run([sys.executable, "-c", script, str(path), "close"], check=True, cwd=REPO)
    db = StoreOptions().open(path)
    assert db.get(b"k") == b"v"


def _options_file(path: Path) -> str:
    return max(path.glob("OPTIONS-*")).read_text()


def _fill(db: object, n: int = 5000) -> None:
    for i in range(n):
        db.put(f'"c-{i:06d}"'.encode(),  # type: ignore[attr-defined]
               b"onboarding.verify-identity support.chat " * 8 + str(i).encode())
    db.flush()  # type: ignore[attr-defined]


def _sst_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.sst"))


@pytest.mark.parametrize(("name", "rocksdb_name"), [("zstd", "kZSTD"), ("lz4", "kLZ4Compression"),
                                                    ("snappy", "kSnappyCompression"),
                                                    ("none", "kNoCompression")])
def test_a_store_is_written_with_the_configured_compression_and_block_size(
        tmp_path: Path, name: str, rocksdb_name: str) -> None:
    path = tmp_path / "customer-state-0.db"
    db = options(name, 32768).open(path)
    _fill(db)
    text = _options_file(path)
    assert f"compression={rocksdb_name}" in text
    assert f"bottommost_compression={rocksdb_name}" in text
    assert "block_size=32768" in text
    assert "bloom" in text.lower()  # Faust's table factory otherwise kept
    del db
    gc.collect()


def test_zstd_keeps_repetitive_values_in_less_disk_than_snappy(tmp_path: Path) -> None:
    sizes = {}
    for name in ("snappy", "zstd"):
        path = tmp_path / f"{name}.db"
        db = options(name).open(path)
        _fill(db)
        sizes[name] = _sst_bytes(path)
        del db
        gc.collect()
    assert 0 < sizes["zstd"] < sizes["snappy"]


def test_a_store_written_with_other_compression_is_read_and_written_on(tmp_path: Path) -> None:
    """An upgraded worker opens a store Faust's defaults (snappy, 4 KiB) wrote."""
    path = tmp_path / "customer-state-0.db"
    db = options("snappy", 4096).open(path)
    _fill(db)
    del db
    gc.collect()
    db = options().open(path)
    assert db.get(b'"c-000042"').endswith(b"42")
    db.put(b'"c-new"', b"v")
    db.flush()
    db.compact_range(None, None)  # rewrites every file with zstd
    assert db.get(b'"c-000042"').endswith(b"42") and db.get(b'"c-new"') == b"v"
    assert "compression=kZSTD" in _options_file(path)
    del db
    gc.collect()


def test_the_app_s_settings_reach_every_table_store(tmp_path: Path) -> None:
    class Store:
        rocksdb_options = StoreOptions(block_cache_size=1234)

    ours = store_options_of(Store(), StoreSettings("lz4", 8192))
    assert ours.settings == StoreSettings("lz4", 8192)
    assert ours.block_cache_size == 1234  # Faust's own options carried over


@pytest.mark.parametrize(("env", "message"), [
    ({"MOT_STORE_COMPRESSION": "gzip"}, "MOT_STORE_COMPRESSION must be one of"),
    ({"MOT_STORE_BLOCK_BYTES": "512"}, "MOT_STORE_BLOCK_BYTES must be within"),
])
def test_a_store_setting_out_of_range_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)
