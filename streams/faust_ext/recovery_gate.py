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

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from faust.tables.manager import TableManager
from faust.tables.recovery import Recovery


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


class GatedTableManager(TableManager):
    """Faust's table manager with :class:`GatedRecovery` as its recovery service."""

    @property
    def recovery(self) -> Recovery:
        if self._recovery is None:
            self._recovery = GatedRecovery(
                self.app, self, beacon=self.beacon, loop=self.loop
            )
        return self._recovery
