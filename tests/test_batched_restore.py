"""When the batched restore ends a recovery: never on a signal left from the one before,
nor while the highwaters it must read up to are not all known."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.faust_ext.batched_restore import BatchedRecovery

STATE = TP("mot-customer-state-changelog", 0)
ANDON = TP("mot-touchpoint-status-changelog", 0)


def recovery(highwaters: dict[TP, int], offsets: dict[TP, int]) -> Any:
    """A recovery in the middle of restoring ``STATE`` and ``ANDON``, its highwaters and
    offsets built."""
    r: Any = object.__new__(BatchedRecovery)
    r._signal_recovery_start = asyncio.Event()
    r._signal_recovery_end = asyncio.Event()
    r.app = SimpleNamespace(in_recovery=False)
    r._active_events_received_at, r._standby_events_received_at = {}, {}
    r._processing_times = []
    r.records_restored = 0
    r.active_tps = {STATE, ANDON}
    r.active_highwaters = Counter(highwaters)
    r.active_offsets = Counter(offsets)
    r._remaining_known = True
    r._set_recovery_started()
    return r


async def test_an_end_signalled_for_the_last_recovery_does_not_end_the_next_one() -> None:
    r = recovery({STATE: 99, ANDON: 9}, {STATE: 99, ANDON: 9})
    r._set_recovery_ended()
    r.signal_recovery_end.set()  # the last restore, ended by the batched path
    r._remaining_known = False  # a rebalance: Faust rebuilds the highwaters and offsets
    r._set_recovery_started()  # ... and starts the next recovery, with records to read
    assert not r.signal_recovery_end.is_set()


async def test_the_restore_is_complete_only_once_every_active_highwater_is_read() -> None:
    r = recovery({STATE: 99, ANDON: 9}, {STATE: 50, ANDON: 9})
    assert not r.restore_complete()  # records 51..99 of STATE still to read
    r.active_offsets[STATE] = 99
    assert r.restore_complete()
    r.signal_recovery_start.set()  # a new rebalance: its highwaters are not built yet
    assert not r.restore_complete()
    r.signal_recovery_start.clear()
    r._remaining_known = False  # highwaters being rebuilt
    assert not r.restore_complete()
    r._remaining_known = True
    del r.active_highwaters[ANDON]  # an active partition whose highwater is not known
    assert not r.need_recovery()  # Faust's own check would call this done
    assert not r.restore_complete()
