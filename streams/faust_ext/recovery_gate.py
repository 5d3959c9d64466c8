"""A gate that holds stream records while Faust finishes a rebalance's recovery.

At the end of every rebalance Faust's ``Recovery.on_recovery_completed`` resumes the
stream partitions, awaits the seek to their committed offsets, and only then calls
``app.flow_control.resume()``, which *clears every agent's queue* and the tables' changelog
queue. The consumer's flow is already active by then (Faust resumed it to read the
changelogs, or right away when there was nothing to restore), so the fetcher can hand
records of the resumed partitions to the agents while the seek is awaited; those the agent
has not taken yet are then cleared, without an ack, and nothing seeks back to them. The
agent goes on with later records, and Faust's next commit (the first run of consecutive
acked offsets) passes the cleared ones: they are lost. With batch delivery a cleared batch
is never marked handled instead, so the partition's commits stop there and the worker idles
with its input unprocessed. Standby changelog records (their partitions are resumed before)
cleared the same way would leave the standby copy without them while its persisted offset
moves past them.

:class:`GatedRecovery` closes a gate (:attr:`GatedRecovery.streams_open`) for the span of
``on_recovery_completed`` (and of ``_resume_streams``, its twin for apps without tables);
the consumer (:class:`streams.faust_ext.batch_delivery.BatchingConsumer`) holds a fetch
made meanwhile until the gate opens, and delivers it only if no new rebalance began
meanwhile (a new one seeks the partitions back to their committed and persisted offsets
itself). An upstream fix would
clear the queues before resuming the stream partitions rather than after.

:meth:`GatedRecovery._seek_offsets` also keeps a rebalance that comes while the recovery
runs from crashing the worker. Faust's rebalance callback (``Recovery.on_rebalance``)
re-registers the changelog partitions in the very mappings the running recovery reads,
with ``None`` for those with no persisted offset, and sets ``signal_recovery_start``; the
recovery's next ``_seek_offsets`` (between ``_build_offsets`` and the seek, or the standby
seek after the actives are restored) then hands ``None`` to aiokafka's ``seek``, which
raises ``ValueError('Offset must be a positive integer')``, and ``Recovery._wait``'s
``wait_first`` propagates it even though the rebalance signal is set: the worker stops
(in a soak, after a broker restart during recovery). Here a seek asked for while a new
recovery is signalled raises ``RebalanceAgain`` (the recovery starts over, as its other
steps do), and an offset not known (``None``) or below -1 is read from the start (0), as
Faust already does for -1. Upstream: check the signal, and map ``None``, in
``Recovery._seek_offsets``.

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.tables.manager import TableManager
from faust.tables.recovery import RebalanceAgain, Recovery
from faust.types import TP


class GatedRecovery(Recovery):
    """Faust's recovery, with :attr:`streams_open` closed while it hands the partitions
    back to the streams."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.streams_open = asyncio.Event()
        self.streams_open.set()

    @contextmanager
    def _streams_closed(self) -> Iterator[None]:
        self.streams_open.clear()
        try:
            yield
        finally:
            self.streams_open.set()

    async def on_recovery_completed(self, generation_id: int = 0) -> None:
        with self._streams_closed():
            await super().on_recovery_completed(generation_id)

    async def _resume_streams(self, generation_id: int = 0) -> None:
        with self._streams_closed():
            await super()._resume_streams(generation_id)

    async def _seek_offsets(self, consumer: Any, tps: set[TP], offsets: Any,
                            title: str) -> None:
        """Faust's seek of changelog partitions to where their reading starts, unless a new
        rebalance is signalled (its offsets may be half rebuilt): then the recovery starts
        over. An offset not known is read from the start."""
        if self.signal_recovery_start.is_set():
            raise RebalanceAgain()
        known = {tp: offset if isinstance(offset, int) and offset >= 0 else -1
                 for tp, offset in ((tp, offsets.get(tp)) for tp in tps)}
        await super()._seek_offsets(consumer, set(known), known, title)


class GatedTableManager(TableManager):
    """Faust's table manager with :attr:`recovery_class` (:class:`GatedRecovery`) as its
    recovery service."""

    recovery_class: type[GatedRecovery] = GatedRecovery

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = self.recovery_class(
                self.app, self, beacon=self.beacon, loop=self.loop
            )
        return self._recovery
