"""Records handed to aiokafka as one pre-built batch per partition, not one ``send`` each.

``Topic.send`` and ``Producer.send`` cost, per record: Faust's serializer and sensor
hooks, then in aiokafka a metadata check, a partitioner call, an append to the
partition's open batch and an ``asyncio.Future`` (created through ``get_event_loop``)
that the sender resolves once the broker acknowledges. aiokafka's public
``create_batch()``/``send_batch()`` build a partition's records in one
``BatchBuilder`` and give one future for all of them. :func:`send_records` does that
for a run of already-encoded records: grouped by topic and partition in the order given
(so a key's records keep their order), each group appended to builders of the
producer's ``max_batch_size`` and submitted with ``send_batch``.

Off by default (``MOT_PRODUCE_BATCHES``): one benchmark run stalled with it, an offset
commit waiting in the producer's ``flush()`` on a batch future that never completed while a
rebalance waited for that commit; the cause is not known yet (docs/performance.md). Off,
the same grouping goes through ``send`` record by record.

A submitted batch sits in the same accumulator as the records of ``send``: the
producer's ``flush()`` (which Faust awaits before every offset commit) waits for its
acknowledgement too, so the delivery promise is unchanged. Under ``exactly_once`` the
records must belong to the transaction of their input: the callers keep Faust's path there.

Changes: reads the Faust producer's aiokafka producer (``Producer._ensure_producer``) and
uses its ``key_partition`` for records without a partition (the default partitioner, as
``send`` would). Upstream candidate: a ``Producer.send_many`` in Faust.

Checked against faust-streaming 0.15.3 and aiokafka 0.14.0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# (topic, partition or None for the key's, key, value)
Record = tuple[str, int | None, bytes | None, bytes | None]


@dataclass(frozen=True, slots=True)
class Sent:
    """One submitted batch: its future resolves to the metadata of its first record."""

    topic: str
    partition: int
    count: int
    future: asyncio.Future[Any]


def group_records(records: Iterable[Record], partition_of: Any
                  ) -> dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]]:
    """The records by (topic, partition), each group in the order given."""
    groups: dict[tuple[str, int], list[tuple[bytes | None, bytes | None]]] = {}
    for topic, partition, key, value in records:
        if partition is None:
            partition = partition_of(topic, key)
        group = groups.get((topic, partition))
        if group is None:
            group = groups[(topic, partition)] = []
        group.append((key, value))
    return groups


async def send_records(app: Any, records: Iterable[Record]) -> list[Sent]:
    """Hand ``records`` to the producer in one batch per partition (more when one would
    exceed the producer's batch size); the batches, in submission order.

    Without ``app.produce_batches`` (``MOT_PRODUCE_BATCHES``) each record goes through
    aiokafka's ``send`` in the same order, and each group's :class:`Sent` is its last
    record's (count 1)."""
    producer = app.producer._ensure_producer()  # the aiokafka producer
    key_partition = app.producer.key_partition

    def partition_of(topic: str, key: bytes | None) -> int:
        return int(key_partition(topic, key).partition)

    records = list(records)
    for topic in {r[0] for r in records if r[1] is None}:
        await producer.partitions_for(topic)  # the partitioner needs the topic's metadata
    sent: list[Sent] = []
    groups = group_records(records, partition_of)
    if not getattr(app, "produce_batches", False):
        for (topic, partition), group in groups.items():
            fut = None
            for key, value in group:
                fut = await producer.send(topic, value, key=key, partition=partition)
            sent.append(Sent(topic, partition, 1, fut))
        return sent
    for (topic, partition), group in groups.items():
        builder = producer.create_batch()
        count = 0
        for key, value in group:
            if builder.append(timestamp=None, key=key, value=value) is None:
                # full: submit it and start the next one (a record alone always fits)
                sent.append(Sent(topic, partition, count,
                                 await producer.send_batch(builder, topic, partition=partition)))
                builder, count = producer.create_batch(), 0
                if builder.append(timestamp=None, key=key, value=value) is None:
                    raise ValueError(f"a record for {topic}[{partition}] exceeds the batch size")
            count += 1
        sent.append(Sent(topic, partition, count,
                         await producer.send_batch(builder, topic, partition=partition)))
    return sent


class Outbox:
    """Records gathered while an input batch is handled, handed to the producer at its end
    (:meth:`send`, before the batch counts as handled) in one batch per partition.

    Under ``exactly_once`` each goes through its topic's ``send`` instead, inside the
    transaction of its input, as before.
    """

    __slots__ = ("app", "records")

    def __init__(self, app: Any) -> None:
        self.app = app
        self.records: list[tuple[Any, bytes, bytes]] = []

    def add(self, topic: Any, key: bytes, value: bytes) -> None:
        """Queue ``key``/``value`` for the Faust ``topic`` (a raw-bytes topic)."""
        self.records.append((topic, key, value))

    async def send(self) -> list[Sent]:
        records, self.records = self.records, []
        if not records:
            return []
        if self.app.in_transaction:
            for topic, key, value in records:
                await topic.send(key=key, value=value)
            return []
        names: dict[int, str] = {}
        out: list[Record] = []
        for topic, key, value in records:
            name = names.get(id(topic))
            if name is None:
                name = names[id(topic)] = topic.get_topic_name()
            out.append((name, None, key, value))
        return await send_records(self.app, out)
