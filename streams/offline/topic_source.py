"""The input topic as a replay's input: every partition from its beginning up to the end
offsets it had when the read started (records produced later are not read).

Records are numbered ``partition << 40 | offset`` (:func:`where` gives the place back) and
handed over through a bounded queue from a reader thread with its own event loop, so
memory stays bounded and the replay itself stays synchronous.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from streams.settings import Settings

SHIFT = 40
_DONE = object()


def where(topic: str, number: int) -> str:
    return f"{topic}[{number >> SHIFT}]@{number & ((1 << SHIFT) - 1)}"


@dataclass
class TopicSource:
    """Iterate :meth:`lines` once; ``partitions`` is known after the first record."""

    s: Settings
    topic: str
    timeout_s: float = 60.0
    partitions: int = 0
    records: int = 0
    _q: queue.Queue[object] = field(default_factory=lambda: queue.Queue(maxsize=64))
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _error: BaseException | None = None

    def start(self) -> TopicSource:
        """Start reading; returns once the partitions and end offsets are known."""
        threading.Thread(target=self._thread, name="mot-replay-topic", daemon=True).start()
        self._ready.wait(self.timeout_s + 5)
        if self._error is not None:
            raise self._error
        if not self._ready.is_set():
            raise TimeoutError(f"no metadata for {self.topic} in {self.timeout_s:g} s")
        return self

    def _thread(self) -> None:
        try:
            asyncio.run(self._read())
        except BaseException as exc:  # handed to the reading side
            self._error = exc
            self._ready.set()
            self._put(_DONE)

    def _put(self, item: object) -> None:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    async def _read(self) -> None:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition

        from streams.kafka.clients import client_options

        # subscribed first, so the client keeps the topic's metadata; then assigned by hand
        consumer = AIOKafkaConsumer(self.topic, **client_options(self.s), group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    max_partition_fetch_bytes=1 << 20)
        await consumer.start()
        try:
            parts: set[int] | None = None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout_s
            while not parts:
                parts = consumer.partitions_for_topic(self.topic)
                if not parts:
                    if loop.time() > deadline:
                        raise LookupError(f"topic {self.topic} not found")
                    if self.topic not in await consumer.topics():
                        raise LookupError(f"topic {self.topic} not found")
                    await asyncio.sleep(0.2)
            consumer.unsubscribe()
            tps = [TopicPartition(self.topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            self.partitions = len(tps)
            self._ready.set()
            todo = {tp: end for tp, end in ends.items() if end > 0}
            for tp in tps:
                if tp not in todo:
                    consumer.pause(tp)
            while todo and not self._stop.is_set():
                batch = await consumer.getmany(timeout_ms=500, max_records=2000)
                out = []
                for tp, recs in batch.items():
                    end = todo.get(tp)
                    if end is None:
                        continue
                    for r in recs:
                        if r.offset < end:
                            out.append(((tp.partition << SHIFT) | r.offset, r.value or b""))
                    if (recs and recs[-1].offset + 1 >= end) or end <= await consumer.position(tp):
                        del todo[tp]
                        consumer.pause(tp)
                if out:
                    self.records += len(out)
                    self._put(out)
        finally:
            await consumer.stop()
            self._put(_DONE)

    def lines(self) -> Iterator[tuple[int, bytes]]:
        try:
            while True:
                item = self._q.get()
                if item is _DONE:
                    if self._error is not None:
                        raise self._error
                    return
                yield from item  # type: ignore[misc]
        finally:
            self._stop.set()


def open_input_topic(s: Settings) -> TopicSource | None:
    """The input topic, read from the beginning up to its end offsets now; ``None`` once
    the reason it cannot be read is said on stderr (the commands then exit 2)."""
    try:
        return TopicSource(s, s.topic_events).start()
    except (LookupError, TimeoutError, OSError) as exc:
        print(f"cannot read {s.topic_events}: {exc}", file=sys.stderr)
        return None
