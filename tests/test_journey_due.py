"""The ``journey-due`` index: keys that sort by deadline, a silence check that reads only
what is due, and the repair of entries the index lacks. On real RocksDB files; the
tables' Faust machinery (events, changelog producer) stands aside."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import rocksdict
from faust.stores import rocksdb as rocksdb_store

from agents import journeys
from agents.domain.journey_index import (
    CLOCK_CODEC,
    DEADLINE_CODEC,
    DUE_CODEC,
    DueEntry,
    JourneyDeadline,
    StreamClock,
    due_key,
    due_key_ms,
)
from agents.domain.journeys import JourneyChange
from agents.suppression import hashed
from streams.faust_ext.table_access import CODEC_ATTR

T = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def test_due_keys_sort_as_their_deadlines_then_by_customer() -> None:
    deadlines = [9.5, 10.0, 99.999, 100.0, 1e9, T, T + 0.001, T + 86400 * 3650]
    keys = [due_key(d, "c") for d in deadlines]
    assert sorted(keys) == keys
    assert sorted(orjson.dumps(k) for k in keys) == [orjson.dumps(k) for k in keys]  # stored
    assert due_key(T, "a") < due_key(T, "b") < due_key(T + 0.001, "a")


@pytest.mark.parametrize("token", ["c-1", "a/b/c", "0000000000000042", "ü\"x", ""])
def test_a_due_key_gives_back_its_deadline_rounded_down(token: str) -> None:
    assert due_key_ms(due_key(T + 0.0019, token)) == int(T * 1000) + 1  # never later
    assert due_key_ms(due_key(-5.0, token)) == 0


class Store(rocksdb_store.Store):
    """One table's RocksDB partition databases, real files, without Faust's Service."""

    def __init__(self, root: Path, partitions: int) -> None:  # Faust's needs an app
        self.use_rocksdict = True
        self._dbs = {p: rocksdict.Rdict(str(root / f"{p}.db"),
                                        options=rocksdict.Options(raw_mode=True))
                     for p in range(partitions)}
        self.reads = 0

    def _db_for_partition(self, partition: int) -> Any:
        return self._dbs[partition]

    def _visible_items(self, db: Any) -> Iterator[tuple[bytes, bytes]]:
        for item in db.items():
            self.reads += 1
            yield item

    def close_all(self) -> None:
        for db in self._dbs.values():
            db.close()


class Writer:
    """The changelog writer's interface: records what would go to the changelog."""

    def __init__(self) -> None:
        self.records: list[tuple[str, int, bytes, bytes | None]] = []

    def add_encoded(self, table: Any, partition: int, key: bytes, value: bytes | None) -> None:
        self.records.append((table.name, partition, key, value))


def table(name: str, data: Any, codec: Any, writer: Writer) -> Any:
    t = SimpleNamespace(name=name, data=data,
                        app=SimpleNamespace(in_transaction=False, _changelog_writer=writer))
    setattr(t, CODEC_ATTR, codec)
    return t


@pytest.fixture
def tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimpleNamespace]:
    writer = Writer()
    due = table("journey-due", Store(tmp_path / "due", 2), DUE_CODEC, writer)
    deadlines = table("journey-deadlines", Store(tmp_path / "deadlines", 2), DEADLINE_CODEC,
                      writer)
    clock = table("stream-clock", {}, CLOCK_CODEC, writer)
    monkeypatch.setattr(journeys, "journey_due", due)
    monkeypatch.setattr(journeys, "journey_deadlines", deadlines)
    monkeypatch.setattr(journeys, "stream_clock", clock)
    monkeypatch.setattr(journeys, "_indexed", set())
    yield SimpleNamespace(due=due, deadlines=deadlines, clock=clock, writer=writer)
    due.data.close_all()
    deadlines.data.close_all()
    gc.collect()


def put(t: Any, partition: int, key: str, value: Any) -> None:
    t.data._dbs[partition].put(orjson.dumps(key), journeys.codec_of(t).encode(value))


def put_due(t: Any, partition: int, deadline: float, customer: str) -> None:
    put(t, partition, dkey(deadline, customer), DueEntry(customer, deadline, partition))


def dkey(deadline: float, customer: str) -> str:
    return due_key(deadline, hashed(customer))


def test_the_check_reads_the_due_entries_and_stops_at_the_first_not_due(
        tables: SimpleNamespace) -> None:
    for i in range(2000):  # one every minute from T on, partition 0; and partition 1
        put_due(tables.due, 0, T + 60 * i, f"c-{i}")
        put_due(tables.due, 1, T + 60 * i, f"d-{i}")
    now = T + 10 * 86400
    # partition 0's clock stands at T + 5 min (the idle advance is off), partition 1 has none
    tables.clock.data["0"] = CLOCK_CODEC.encode(StreamClock(T + 300.0, now))
    due = journeys.due_checks([0, 1], now, idle_advance_s=0.0)
    assert due == [(f"c-{i}", 0, T + 300.0, T + 60 * i) for i in range(6)]
    assert tables.due.data.reads == 7  # the six due, and the first one not due


def test_an_entry_due_within_the_key_s_millisecond_waits_for_its_exact_deadline(
        tables: SimpleNamespace) -> None:
    put_due(tables.due, 0, T + 0.0004, "c-1")
    tables.clock.data["0"] = CLOCK_CODEC.encode(StreamClock(T + 0.0002, T + 1))
    assert journeys.due_checks([0], T + 1, idle_advance_s=0.0) == []
    tables.clock.data["0"] = CLOCK_CODEC.encode(StreamClock(T + 0.0004, T + 1))
    assert [c for c, *_ in journeys.due_checks([0], T + 1, idle_advance_s=0.0)] == ["c-1"]


def test_entries_missing_from_the_index_are_written_once_per_assignment(
        tables: SimpleNamespace) -> None:
    """A store written before ``journey-due`` existed, or a write a crash lost."""
    for i in range(5):
        put(tables.deadlines, 0, f"c-{i}", JourneyDeadline(T + i, 0))
    put(tables.deadlines, 1, "d-0", JourneyDeadline(T, 1))
    put_due(tables.due, 0, T + 2, "c-2")  # already there
    assert journeys.index_partitions([0]) == 4
    assert due_rows(tables.due) == {dkey(T + i, f"c-{i}"): (f"c-{i}", T + i) for i in range(5)}
    assert [orjson.loads(k) for _, p, k, _ in tables.writer.records] == [
        dkey(T + i, f"c-{i}") for i in (0, 1, 3, 4)]  # each with its changelog record
    assert {p for _, p, _, _ in tables.writer.records} == {0}
    assert journeys.index_partitions([0]) == 0  # done for this assignment
    journeys._indexed.clear()  # what a revocation does
    assert journeys.index_partitions([0, 1]) == 1  # partition 1's one entry


def test_an_erasure_finds_every_due_entry_of_the_customer_and_no_other(
        tables: SimpleNamespace) -> None:
    for cid in ("c-1", "c-11", "x/c-1"):
        put_due(tables.due, 0, T + len(cid), cid)
    put_due(tables.due, 0, T + 99, "c-1")  # a stale one
    stale = due_key(T + 50, "an older hash key's token")  # the id is in the value only
    put(tables.due, 0, stale, DueEntry("c-1", T + 50, 0))
    assert journeys.due_keys_of("c-1", 0) == [dkey(T + 3, "c-1"), stale, dkey(T + 99, "c-1")]
    assert journeys.due_keys_of("c-1", 1) == []


def test_no_due_key_holds_the_customer_id(tables: SimpleNamespace) -> None:
    """RocksDB keeps the first and last key of every file in its MANIFEST, which an
    erasure's compaction does not rewrite."""
    assert "c-000123" not in dkey(T, "c-000123")
    assert dkey(T, "c-000123") == dkey(T, "c-000123") != dkey(T, "c-000124")


class Event:
    def __init__(self, partition: int) -> None:
        self.message = SimpleNamespace(partition=partition)


@pytest.fixture
def handling() -> Iterator[Any]:
    """Make the current event a record of a partition, as the agents' handlers run."""
    from faust.streams import _current_event

    held: list[Event] = []

    def on(partition: int) -> None:
        held.append(Event(partition))
        _current_event.set(weakref.ref(held[-1]))  # Faust holds a weak reference

    yield on
    _current_event.set(None)


def due_rows(t: Any, partition: int = 0) -> dict[str, Any]:
    """The rows of a table's partition: deadlines by customer, or (customer, deadline)
    by due key."""
    rows = {}
    for k, v in t.data._dbs[partition].items():
        entry = journeys.codec_of(t).decode(v)
        rows[orjson.loads(k)] = (entry.deadline if isinstance(entry, JourneyDeadline)
                                 else (entry.customer_id, entry.deadline))
    return rows


def test_both_indexes_follow_a_journey_opening_earlier_and_the_last_one_closing(
        tables: SimpleNamespace, handling: Any) -> None:
    handling(0)
    journeys.keep_deadline("c-1", 0, JourneyChange(False, 1, True, T + 600))
    journeys.keep_deadline("c-1", 0, JourneyChange(True, 2, True, T + 900))  # later: kept
    assert due_rows(tables.due) == {dkey(T + 600, "c-1"): ("c-1", T + 600)}
    journeys.keep_deadline("c-1", 0, JourneyChange(True, 2, True, T + 300))  # earlier
    assert due_rows(tables.due) == {dkey(T + 300, "c-1"): ("c-1", T + 300)}
    assert due_rows(tables.deadlines) == {"c-1": T + 300}
    journeys.keep_deadline("c-1", 0, JourneyChange(True, 0, False, None, ["completed"]))
    assert due_rows(tables.due) == {} and due_rows(tables.deadlines) == {}
    tombstones = [orjson.loads(k) for _, _, k, v in tables.writer.records if v is None]
    assert tombstones == [dkey(T + 600, "c-1"), dkey(T + 300, "c-1"), "c-1"]


def test_a_check_made_by_a_stale_entry_removes_it_and_keeps_the_customer_s_own(
        tables: SimpleNamespace, handling: Any) -> None:
    """A crash between the two indexes' writes left an old ``journey-due`` entry."""
    put(tables.deadlines, 0, "c-1", JourneyDeadline(T + 900, 0))
    put_due(tables.due, 0, T + 900, "c-1")
    put_due(tables.due, 0, T + 60, "c-1")  # stale
    handling(0)
    journeys.correct_deadline("c-1", 0, JourneyChange(True, 1, False, T + 900), T + 60)
    assert due_rows(tables.due) == {dkey(T + 900, "c-1"): ("c-1", T + 900)}
    assert due_rows(tables.deadlines) == {"c-1": T + 900}


def test_a_check_writes_the_due_entry_a_crash_lost(
        tables: SimpleNamespace, handling: Any) -> None:
    put(tables.deadlines, 0, "c-1", JourneyDeadline(T + 900, 0))
    handling(0)
    journeys.correct_deadline("c-1", 0, JourneyChange(True, 1, False, T + 900))
    assert due_rows(tables.due) == {dkey(T + 900, "c-1"): ("c-1", T + 900)}


def test_a_check_that_drops_the_last_journey_removes_both_entries(
        tables: SimpleNamespace, handling: Any) -> None:
    put(tables.deadlines, 0, "c-1", JourneyDeadline(T + 60, 0))
    put_due(tables.due, 0, T + 60, "c-1")
    handling(0)
    journeys.correct_deadline("c-1", 0, JourneyChange(True, 0, False, None, ["dropped"]),
                              T + 60)
    assert due_rows(tables.due) == {} and due_rows(tables.deadlines) == {}


def test_the_bench_s_two_ways_of_checking_find_the_same_due_customers() -> None:
    from bench.domain import silence_check

    figures = silence_check(3000, 25)  # raises if the two reads disagree
    assert set(figures) == {"full_scan_ms", "indexed_ms"}
