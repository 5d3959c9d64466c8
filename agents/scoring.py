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

import orjson
from faust.types import EventT

from agents.domain.failed_moment import KIND as FAILED_MOMENT
from agents.domain.moment_processor import process_record
from streams import metrics as m
from streams.app import app, model, settings
from streams.topics import dead_letter_topic, events_topic, failed_moment_alerts_topic

log = logging.getLogger(__name__)

customer_state = app.Table(
    "customer-state",
    default=None,
    key_type=str,
    partitions=settings.partitions,
)

ALERT_TOPICS = {FAILED_MOMENT: failed_moment_alerts_topic}


async def dead_letter(event: EventT, reason: str, detail: str) -> None:
    """Original key and bytes unchanged; the reason and the source in headers."""
    msg = event.message
    m.events_dead_lettered.labels(reason).inc()
    await dead_letter_topic.send(
        key=msg.key,
        value=msg.value if msg.value is not None else b"",
        headers=[
            ("mot.reason", reason.encode()),
            ("mot.detail", detail.encode()[:1024]),
            ("mot.source.topic", msg.topic.encode()),
            ("mot.source.partition", str(msg.partition).encode()),
            ("mot.source.offset", str(msg.offset).encode()),
            ("mot.source.timestamp", str(msg.timestamp).encode()),
        ],
    )


async def score_event(event: EventT) -> None:
    """Process one record end to end."""
    received = time.perf_counter()
    m.events_consumed.inc()
    msg = event.message
    done = process_record(msg.value, msg.key, customer_state.get, model,
                          settings.max_record_bytes, time.time())
    if done.rejected is not None:
        if done.event is not None:
            m.events_valid.inc()
        await dead_letter(event, *done.rejected)
        return
    m.events_valid.inc()
    if done.rekey is not None:
        # Wrong or missing key: the table would live on the wrong partition.
        # Re-publish under the customer's key; that copy is the one scored.
        m.events_rekeyed.inc()
        await events_topic.send(key=done.rekey.encode(), value=msg.value)
        return
    result = done.result
    assert result is not None and done.customer_id is not None and done.event is not None
    if done.state is not None:
        customer_state[done.customer_id] = done.state
        m.running_score.observe(result.score_after)
    if result.duplicate:
        m.events_duplicate.inc()
    elif result.failed:
        m.failed_moments.labels(done.event["touchpoint"], done.event.get("channel", "")).inc()
    for out in done.outputs:
        await ALERT_TOPICS[out.kind].send(key=out.key.encode(), value=orjson.dumps(out.value))
        m.alerts_emitted.labels(out.kind).inc()
    m.processing_latency.observe(time.perf_counter() - received)


@app.agent(events_topic, name="score-moments")
async def score_moments(stream: AsyncIterable[Any]) -> None:
    async for event in stream.events():  # type: ignore[attr-defined]
        try:
            await score_event(event)
        except Exception as exc:  # a defect must not stop the partition: park the record
            msg = event.message
            log.exception(
                "internal error on %s[%s]@%s; record dead-lettered",
                msg.topic, msg.partition, msg.offset,
            )
            await dead_letter(event, "internal_error", type(exc).__name__)
