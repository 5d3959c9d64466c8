"""Journeys that go silent: noticed even when the customer never sends another event.

Every ``MOT_JOURNEY_CHECK_INTERVAL_S`` each worker's timer reads the event-time clock
(:func:`agents.journeys.due_checks`) of every input partition it runs and reads the
``journey-due`` index of those partitions in deadline order, up to the first entry not
yet due (after an assignment it first completes that index from ``journey-deadlines``:
:func:`agents.journeys.index_partitions`). For a customer whose
deadline has passed it sends a check, keyed by the customer, to the internal topic
``<app id>-journey-timeouts`` *on the same partition number* as the customer's
events; the agent here handles it in that partition's context, like the scoring
agent: it reads and writes the customer's state, the domain drops the silent journeys
and renders their drop-offs as the scoring path does
(:func:`agents.domain.moment_processor.process_silence_check`), and the agent corrects
the index entries (the entry that made the check goes if it is no longer the
customer's: :func:`agents.journeys.correct_deadline`) and sends the alerts. Everything
it needs is in tables, so after a rebalance the worker that took the partition over
carries on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable
from typing import Any

import orjson

from agents.domain.moment_processor import process_silence_check
from agents.journeys import correct_deadline, count_journeys, due_checks, index_partitions
from agents.rules_topic import rules_book, wait_loaded
from agents.scoring import customer_state, send_alert
from streams.app import app, settings
from streams.faust_ext.table_access import store, stored
from streams.topics import raw_topic

log = logging.getLogger(__name__)

journey_timeouts_topic = raw_topic(f"{settings.app_id}-journey-timeouts", internal=True)


@app.timer(interval=settings.journey_check_interval_s)
async def find_silent_journeys() -> None:
    if app.rebalancing or not app.tables.recovery.completed.is_set():
        return
    owned = {tp.partition for tp in app.assignor.assigned_actives()
             if tp.topic == settings.topic_events}
    written = index_partitions(owned)
    if written:
        log.info("journey-due: %d entries indexed from journey-deadlines", written)
    for customer_id, partition, mark, deadline in due_checks(
            owned, time.time(), settings.journey_idle_advance_s):
        await journey_timeouts_topic.send(key=customer_id.encode(),
                                          value=orjson.dumps([mark, deadline]),
                                          partition=partition)


def read_check(raw: bytes) -> tuple[float, float | None]:
    """A check's watermark, and the deadline of the ``journey-due`` entry that made it
    (None: a check written before the index, a bare watermark)."""
    value = orjson.loads(raw)
    if isinstance(value, list):
        return float(value[0]), float(value[1])
    return float(value), None


async def expire_customer(event: Any) -> None:
    """One customer's check: the domain decides, the agent writes the tables and sends."""
    msg = event.message
    customer_id = msg.key.decode()
    watermark, deadline = read_check(msg.value)
    checked = process_silence_check(stored(customer_state, customer_id), customer_id,
                                    watermark, rules_book(), time.time())
    if checked.state is not None:
        store(customer_state, customer_id, checked.state)
    correct_deadline(customer_id, msg.partition, checked.journeys, deadline)
    count_journeys(checked.journeys, checked.outputs)
    for out in checked.outputs:
        await send_alert(out)


@app.agent(journey_timeouts_topic, name="expire-silent-journeys")
async def expire_silent_journeys(stream: AsyncIterable[Any]) -> None:
    await wait_loaded()
    async for event in stream.events():  # type: ignore[attr-defined]
        try:
            await expire_customer(event)
        except Exception:  # a defect must not stop the check for everyone else
            msg = event.message
            log.exception("internal error on journey check %s[%s]@%s; skipped",
                          msg.topic, msg.partition, msg.offset)
