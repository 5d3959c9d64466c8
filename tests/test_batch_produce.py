"""Alerts of a batch handed to the producer as one batch per partition, in their order,
and the per-batch metric tally adding up to what per-event counting gave."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from streams import metrics as m
from streams.faust_ext.batch_produce import Outbox, send_records
from tests.test_changelog_writer import Producer


class Topic:
    def __init__(self, name: str) -> None:
        self.name = name
        self.sent: list[tuple[bytes, bytes]] = []

    def get_topic_name(self) -> str:
        return self.name

    async def send(self, *, key: bytes, value: bytes) -> None:
        self.sent.append((key, value))


class MetadataProducer(Producer):
    def __init__(self) -> None:
        super().__init__()
        self.metadata_asked: list[str] = []

    async def partitions_for(self, topic: str) -> set[int]:
        self.metadata_asked.append(topic)
        return {0, 1, 2}


def app_with(producer: Producer, in_transaction: bool = False) -> Any:
    return SimpleNamespace(producer=producer, in_transaction=in_transaction,
                           produce_batches=True)


async def test_a_batchs_alerts_go_one_producer_batch_per_partition_in_their_order() -> None:
    producer = MetadataProducer()
    alerts, circles = Topic("alerts"), Topic("circles")
    box = Outbox(app_with(producer))
    keys = [b"a", b"bb", b"ccc", b"dd", b"e", b"fff"]  # the fake partitions by key length
    for i, k in enumerate(keys):
        box.add(alerts if i % 2 == 0 else circles, k, b"%d" % i)
    assert producer.sent == []  # nothing before the batch's end
    sent = await box.send()
    assert producer.metadata_asked and set(producer.metadata_asked) == {"alerts", "circles"}
    # one producer batch per (topic, partition), each with its records in the order added
    assert [(s.topic, s.partition, s.count) for s in sent] == [
        ("alerts", 1, 2), ("circles", 2, 2), ("alerts", 0, 1), ("circles", 0, 1)]
    assert [v for _, _, v, _ in producer.sent] == [b"0", b"4", b"1", b"3", b"2", b"5"]
    assert await box.send() == []  # sent once


async def test_record_by_record_the_alerts_keep_the_same_order() -> None:
    producer = MetadataProducer()
    app = app_with(producer)
    app.produce_batches = False
    alerts = Topic("alerts")
    box = Outbox(app)
    for i, k in enumerate([b"a", b"bb", b"e", b"ccc"]):
        box.add(alerts, k, b"%d" % i)
    sent = await box.send()
    assert [(s.topic, s.partition) for s in sent] == [("alerts", 1), ("alerts", 2), ("alerts", 0)]
    assert [v for _, _, v, _ in producer.sent] == [b"0", b"2", b"1", b"3"]
    assert len(producer.batches) == 4  # a future per record


async def test_under_exactly_once_each_alert_goes_through_its_topic() -> None:
    producer = MetadataProducer()
    alerts = Topic("alerts")
    box = Outbox(app_with(producer, in_transaction=True))
    box.add(alerts, b"k1", b"v1")
    box.add(alerts, b"k2", b"v2")
    await box.send()
    assert alerts.sent == [(b"k1", b"v1"), (b"k2", b"v2")]
    assert producer.sent == []


async def test_records_with_a_partition_need_no_metadata_look_up() -> None:
    producer = MetadataProducer()
    await send_records(app_with(producer), [("t", 5, b"k", b"v")])
    assert producer.metadata_asked == []
    assert producer.sent == [("t", b"k", b"v", 5)]


def test_a_tally_adds_up_to_the_same_samples_as_counting_each_event() -> None:
    one, many = CollectorRegistry(), CollectorRegistry()

    def metrics(reg: CollectorRegistry) -> tuple[Counter, Counter, Histogram]:
        return (Counter("x_total", "x", registry=reg),
                Counter("y_total", "y", ["kind"], registry=reg),
                Histogram("z", "z", buckets=(1, 2, 5), registry=reg))

    x1, y1, z1 = metrics(one)
    xn, yn, zn = metrics(many)
    tally = m.Tally()
    for i in range(7):
        x1.inc()
        y1.labels("a" if i % 3 else "b").inc(0.5)
        z1.observe(i)
        tally.inc(xn)
        tally.inc(m.child(yn, "a" if i % 3 else "b"), 0.5)
        tally.observe(zn, i)
    assert m.child(yn, "a") is m.child(yn, "a")
    tally.apply()

    def samples(reg: CollectorRegistry) -> list[Any]:
        return [(s.name, s.labels, s.value) for f in reg.collect() for s in f.samples]

    assert samples(many) == samples(one)
    tally.apply()  # applied once: nothing left to add
    assert samples(many) == samples(one)


def test_the_loop_histogram_exports_the_samples_of_a_prometheus_histogram() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    buckets = (-12, -1, 0, 1, 12)
    h = Histogram("mot_score", "Scores.", buckets=buckets, registry=theirs)
    loop = m.LoopHistogram("mot_score", "Scores.", buckets, registry=ours)
    for v in (-30, -12, -0.5, 0, 0, 0.5, 1, 11.9, 12, 99):
        h.observe(v)
        loop.observe(v)

    def samples(reg: CollectorRegistry) -> list[Any]:
        return sorted((s.name, tuple(sorted(s.labels.items())), s.value)
                      for f in reg.collect() for s in f.samples)

    assert samples(ours) == samples(theirs)
    assert ("mot_score_bucket", (("le", "+Inf"),), 10) in samples(ours)
    theirs, ours = CollectorRegistry(), CollectorRegistry()  # and without negative bounds
    h = Histogram("mot_latency", "Latency.", buckets=(0.001, 0.01), registry=theirs)
    loop = m.LoopHistogram("mot_latency", "Latency.", (0.001, 0.01), registry=ours)
    for v in (0.0005, 0.001, 0.002, 0.5):
        h.observe(v)
        loop.observe(v)
    assert samples(ours) == samples(theirs)
    assert ("mot_latency_sum", (), 0.5035) in samples(ours)
