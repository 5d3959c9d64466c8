"""The recovery gate's seek of changelog partitions: a rebalance that comes while table
recovery runs (after a broker restart, say) restarts the recovery instead of crashing the
worker with an offset aiokafka refuses."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from faust.tables.recovery import RebalanceAgain
from faust.types import TP

from streams.faust_ext.recovery_gate import GatedRecovery

STATE = TP("mot-customer-state-changelog", 0)
ANDON = TP("mot-touchpoint-status-changelog", 1)


class SeekingConsumer:
    """Checks offsets as aiokafka's ``AIOKafkaConsumer.seek`` does."""

    def __init__(self) -> None:
        self.seeks: list[dict[TP, int]] = []

    async def seek_wait(self, partitions: dict[TP, Any]) -> None:
        for offset in partitions.values():
            if not isinstance(offset, int) or offset < 0:
                raise ValueError("Offset must be a positive integer")
        self.seeks.append(dict(partitions))


def recovery() -> Any:
    r: Any = object.__new__(GatedRecovery)
    r._signal_recovery_start = asyncio.Event()
    return r


def rebalanced_offsets() -> Counter[TP]:
    """The offsets as Faust's ``Recovery.on_rebalance`` leaves them: a partition with a
    persisted offset, and one without (``None``, until ``_build_offsets`` runs)."""
    offsets: Counter[TP] = Counter({STATE: 41})
    offsets.setdefault(ANDON, None)  # type: ignore[arg-type]
    return offsets


async def test_a_seek_while_a_new_rebalance_is_signalled_restarts_the_recovery() -> None:
    r, consumer = recovery(), SeekingConsumer()
    r.signal_recovery_start.set()  # the rebalance came while the recovery ran
    with pytest.raises(RebalanceAgain):
        await r._seek_offsets(consumer, {STATE, ANDON}, rebalanced_offsets(), "standby")
    assert consumer.seeks == []


async def test_an_offset_not_known_is_read_from_the_start() -> None:
    r, consumer = recovery(), SeekingConsumer()
    offsets = rebalanced_offsets()
    offsets[TP("mot-customer-state-changelog", 2)] = -1  # no persisted offset, none built
    await r._seek_offsets(consumer, set(offsets), offsets, "active")
    assert consumer.seeks == [{STATE: 41, ANDON: 0, TP("mot-customer-state-changelog", 2): 0}]
