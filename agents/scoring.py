"""The scoring agent: touchpoint events in, running scores kept, alerts out.

Thin shell around :func:`agents.domain.moment_processor.process_record`: it reads
and writes the ``customer-state`` table, sends what the core returns and counts.
Anything unexpected about a record goes to the dead-letter topic with a reason;
nothing stops the agent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable
from typing import Any

from agents.domain.circles import KINDS as CIRCLE_KINDS
from agents.domain.customer_state import CODEC as STATE_CODEC
from agents.domain.customer_state import CustomerState, in_vicious_circle
from agents.domain.drop_off import KIND as DROP_OFF
from agents.domain.failed_moment import KIND as FAILED_MOMENT
from agents.domain.moment_processor import Output, process_record
from agents.journeys import note_record
from agents.open_circles import OpenCircles, open_in_partition
from agents.rules_topic import note_scored, rules_book, wait_loaded
from agents.suppression import alert_record, suppressed
from agents.touchpoints import observe_moment
from streams import metrics as m
from streams.app import app, settings
from streams.dead_letters import stream_headers
from streams.faust_ext.batch_delivery import BatchMessage, batch_handled, records_of, timestamp_s
from streams.faust_ext.batch_produce import Outbox
from streams.faust_ext.changelog_writer import flush_changelogs
from streams.faust_ext.table_access import store, stored, typed_table
from streams.topics import (
    circle_alerts_topic,
    dead_letter_topic,
    drop_off_alerts_topic,
    events_topic,
    failed_moment_alerts_topic,
)

log = logging.getLogger(__name__)

customer_state = typed_table(app.Table(
    "customer-state",
    default=None,
    key_type=str,
    value_type=bytes,
    partitions=settings.partitions,
), STATE_CODEC)

ALERT_TOPICS = {FAILED_MOMENT: failed_moment_alerts_topic}
ALERT_TOPICS.update(dict.fromkeys(CIRCLE_KINDS, circle_alerts_topic))
ALERT_TOPICS[DROP_OFF] = drop_off_alerts_topic

# Customers in a vicious circle, per owned partition (see agents/open_circles.py).
open_circles = OpenCircles()


def owned_partitions() -> list[int]:
    """Partitions of the input topic (= of the table) this worker processes now."""
    return [tp.partition for tp in app.assignor.assigned_actives()
            if tp.topic == settings.topic_events]


m.customers_in_vicious_circle.set_function(lambda: open_circles.count(owned_partitions()))


@app.on_partitions_revoked.connect
async def forget_revoked_circles(sender: Any, revoked: Any, **kwargs: Any) -> None:
    open_circles.drop(tp.partition for tp in revoked if tp.topic == settings.topic_events)


@app.on_rebalance_complete.connect
async def count_assigned_circles(sender: Any, **kwargs: Any) -> None:
    """Tables are recovered: count the open circles of newly owned partitions."""
    def key_partition(customer_id: str) -> int:
        return app.producer.key_partition(settings.topic_events, customer_id.encode()).partition

    for p in owned_partitions():
        if p not in open_circles.by_partition:
            open_circles.load(p, open_in_partition(customer_state, p, key_partition))


def customer_state_of(customer_id: str) -> CustomerState | None:
    return stored(customer_state, customer_id)


async def send_alert(out: Output) -> None:
    """An alert the domain returned, to its kind's topic, keyed by customer (or by the
    keyed hash: ``MOT_ALERT_CUSTOMER_ID``)."""
    key, value = alert_record(out)
    await ALERT_TOPICS[out.kind].send(key=key, value=value)
    m.alerts_emitted.labels(out.kind).inc()


def count_transition(alert: dict[str, Any], tally: m.Tally | None = None) -> None:
    if tally is None:
        tally = m.Tally()
        count_transition(alert, tally)
        tally.apply()
        return
    tally.inc(m.child(m.circle_transitions, alert["kind"], alert["lifecycle"]))
    if alert["lifecycle"] == "resolved":
        tally.observe(m.vicious_circle_duration, alert["duration_s"])


class Batch:
    """What the records of one input batch hand on at its end: their alerts (one producer
    batch per partition), their metric counts and the times they were received (for the
    processing latency, observed once the alerts are with the producer)."""

    __slots__ = ("outbox", "received", "tally")

    def __init__(self) -> None:
        self.outbox = Outbox(app)
        self.tally = m.Tally()
        self.received: list[float] = []

    def alert(self, out: Output) -> None:
        key, value = alert_record(out)
        self.outbox.add(ALERT_TOPICS[out.kind], key, value)
        self.tally.inc(m.child(m.alerts_emitted, out.kind))

    async def finish(self) -> None:
        """The alerts to the producer, then the batch's metrics."""
        await self.outbox.send()
        handed = time.perf_counter()
        for received in self.received:
            self.tally.observe(m.processing_latency, handed - received)
        self.received.clear()
        self.tally.apply()


async def dead_letter(record: Any, reason: str, detail: str) -> None:
    """Original key and bytes unchanged; the reason and the source in headers."""
    m.events_dead_lettered.labels(reason).inc()
    await dead_letter_topic.send(
        key=record.key,
        value=record.value if record.value is not None else b"",
        headers=stream_headers(reason, detail, record.topic, record.partition, record.offset,
                               timestamp_s(record)),
    )


async def score_record(record: Any, batch: Batch) -> None:
    """Process one record end to end (``record``: an aiokafka record or a Faust message);
    its alerts and counts go to ``batch``."""
    received = time.perf_counter()
    tally = batch.tally
    tally.inc(m.events_consumed)
    partition = record.partition
    done = process_record(record.value, record.key, customer_state_of, rules_book(),
                          settings.max_record_bytes, time.time(), (partition, record.offset))
    if await suppressed(record, done):  # an erased customer's (MOT_ERASURE_POLICY)
        return
    if done.rejected is not None:
        if done.event is not None:
            tally.inc(m.events_valid)
        await dead_letter(record, *done.rejected)
        return
    tally.inc(m.events_valid)
    if done.rekey is not None:
        # Wrong or missing key: the table would live on the wrong partition.
        # Re-publish under the customer's key; that copy is the one scored.
        m.events_rekeyed.inc()
        await events_topic.send(key=done.rekey.encode(), value=record.value)
        return
    result = done.result
    assert result is not None and done.customer_id is not None and done.event is not None
    if done.state is not None:
        store(customer_state, done.customer_id, done.state)
        open_circles.update(partition, done.customer_id, in_vicious_circle(done.state))
        if not result.duplicate:
            tally.observe(m.running_score, result.score_after)
    if not result.duplicate:
        note_scored(done.occurred_at)  # a version learnt from now on starts after it
    if result.duplicate:
        tally.inc(m.events_duplicate)
    elif result.failed:
        tally.inc(m.child(m.failed_moments, done.event.touchpoint,
                          done.event.channel or ""))
    note_record(partition, done, time.time(), tally)  # journeys: clock, deadlines, metrics
    await observe_moment(done)  # touchpoint andon
    for out in done.outputs:
        batch.alert(out)
        if out.kind in CIRCLE_KINDS and not result.duplicate:
            count_transition(out.value, tally)
    batch.received.append(received)


@app.agent(events_topic, name="score-moments")
async def score_moments(stream: AsyncIterable[Any]) -> None:
    await wait_loaded()  # every published version known before the first event is scored
    # An event is one record, or with MOT_BATCH_DELIVERY one partition's records from one
    # fetch (streams/faust_ext/batch_delivery.py); the tables take the partition from it.
    batch = Batch()
    async for event in stream.events():  # type: ignore[attr-defined]
        for record in records_of(event):
            try:
                await score_record(record, batch)
            except Exception as exc:  # a defect must not stop the partition: park the record
                log.exception(
                    "internal error on %s[%s]@%s; record dead-lettered",
                    record.topic, record.partition, record.offset,
                )
                await dead_letter(record, "internal_error", type(exc).__name__)
        # The event's alerts go to the producer before its offsets can count (a single
        # record is acked when the stream takes the next one), and so before any commit.
        await batch.finish()
        if isinstance(event.message, BatchMessage):
            # The batch's table writes go to the producer before its offsets count; a
            # single record's are taken by the producer flush that precedes every commit.
            await flush_changelogs(app)
            batch_handled(event)
