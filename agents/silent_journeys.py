"""Journeys that go silent: noticed even when the customer never sends another event.

Every ``MOT_JOURNEY_CHECK_INTERVAL_S`` each worker's timer reads the event-time clock
(:func:`agents.domain.journeys.stream_watermark`) of every input partition it runs
and scans the ``journey-deadlines`` index of those partitions. For a customer whose
deadline has passed it sends a check, keyed by the customer, to the internal topic
``<app id>-journey-timeouts`` *on the same partition number* as the customer's
events; the agent here handles it in that partition's context, like the scoring
agent: it reads and writes the customer's state, drops the silent journeys
(:func:`agents.domain.journeys.expire_journeys`), corrects the index entry and sends
the drop-off alerts. Everything it needs is in tables, so after a rebalance the
worker that took the partition over carries on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable
from typing import Any

import orjson

from agents.domain.drop_off import KIND as DROP_OFF
from agents.domain.drop_off import drop_off_alert
from agents.domain.journeys import KEY as JOURNEYS
from agents.domain.journeys import expire_journeys, stream_watermark
from agents.domain.moment_processor import Output
from agents.journeys import count_journeys, journey_deadlines, stream_clock
from agents.scoring import ALERT_TOPICS, customer_state
from streams import metrics as m
from streams.app import app, model, settings
from streams.faust_ext.table_access import discard, store, stored
from streams.topics import raw_topic

log = logging.getLogger(__name__)

journey_timeouts_topic = raw_topic(f"{settings.app_id}-journey-timeouts", internal=True)


def due_checks(now: float) -> list[tuple[str, int, float]]:
    """(customer, partition, watermark) for every indexed customer whose deadline passed,
    among the input partitions this worker runs."""
    owned = {tp.partition for tp in app.assignor.assigned_actives()
             if tp.topic == settings.topic_events}
    marks: dict[int, float] = {}
    for p in owned:
        c = stream_clock.get(str(p))
        if c is not None:
            marks[p] = stream_watermark(c[0], c[1], now, settings.journey_idle_advance_s)
    if not marks:
        return []
    due = []
    for customer_id, (deadline, p) in journey_deadlines.items():
        mark = marks.get(p)
        if mark is not None and deadline <= mark:
            due.append((customer_id, p, mark))
    return due


@app.timer(interval=settings.journey_check_interval_s)
async def find_silent_journeys() -> None:
    if app.rebalancing or not app.tables.recovery.completed.is_set():
        return
    for customer_id, partition, mark in due_checks(time.time()):
        await journey_timeouts_topic.send(key=customer_id.encode(), value=orjson.dumps(mark),
                                          partition=partition)


async def expire_customer(event: Any) -> None:
    msg = event.message
    customer_id = msg.key.decode()
    watermark = float(orjson.loads(msg.value))
    now = time.time()
    state = stored(customer_state, customer_id)
    js, change = expire_journeys(state.get(JOURNEYS) if state else None, watermark,
                                 model.journeys)
    outputs = [
        Output(DROP_OFF, customer_id, drop_off_alert(
            customer_id, d, model.journeys, model.quality.failed_threshold,
            model.quality.red_quality, now))
        for d in change.dropped
    ]
    if state is not None and change.dropped:
        new = dict(state)
        if js is None:
            new.pop(JOURNEYS, None)
        else:
            new[JOURNEYS] = js
        store(customer_state, customer_id, new)
    if change.open_count == 0 or change.earliest_deadline is None:
        discard(journey_deadlines, customer_id)
    elif stored(journey_deadlines, customer_id) != [change.earliest_deadline, msg.partition]:
        store(journey_deadlines, customer_id, [change.earliest_deadline, msg.partition])
    count_journeys(change, outputs)
    for out in outputs:
        await ALERT_TOPICS[out.kind].send(key=out.key.encode(), value=orjson.dumps(out.value))
        m.alerts_emitted.labels(out.kind).inc()


@app.agent(journey_timeouts_topic, name="expire-silent-journeys")
async def expire_silent_journeys(stream: AsyncIterable[Any]) -> None:
    async for event in stream.events():  # type: ignore[attr-defined]
        try:
            await expire_customer(event)
        except Exception:  # a defect must not stop the check for everyone else
            msg = event.message
            log.exception("internal error on journey check %s[%s]@%s; skipped",
                          msg.topic, msg.partition, msg.offset)
