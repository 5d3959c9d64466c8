"""Hot reload: every worker reads the whole rules topic and scores each event under the
version of its event time.

The rules topic (``MOT_TOPIC_RULES``: one partition, compacted, keyed by version) is read
by a plain consumer of this worker's own, outside the consumer group: every worker reads
every record, from the beginning, at start and then as records come. Not a Faust
``GlobalTable``: its changelog-topic naming, recovery and standby handling are the
framework's, where an invalid record must be refused (and counted) before anything
applies it, and a worker must not score an event before it knows every version. So the
scoring agent and the andon wait at start until the topic has been read up to the end
offsets it had then (:func:`wait_loaded`).

:func:`agents.domain.rules.learn` decides what a record does: a new version joins the
book; an invalid document or a known version with other values is ignored (logged,
counted in ``mot_rules_refused_total``), the worker keeps its rules; a version arriving
after this worker scored events at or after its ``effective_from`` applies from the next
event time instead (logged, ``mot_rules_late_total``). ``GET /rules`` shows the book.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

from agents.domain.rules import RuleBook, env_rules, learn
from agents.domain.timestamps import iso
from streams import metrics as m
from streams.app import app, settings
from streams.topics import rules_topic
from streams.web import page

log = logging.getLogger(__name__)

book = RuleBook(env_rules(settings))
_loaded = asyncio.Event()
_scored_up_to = [-math.inf]  # the latest event time this worker has scored


def rules_book() -> RuleBook:
    """Every version this worker knows (the scoring path picks one per event)."""
    return book


def note_scored(occurred_at: float | None) -> None:
    """An event scored at ``occurred_at`` (event time): a version learnt later than this
    one starts after it."""
    if occurred_at is not None and occurred_at > _scored_up_to[0]:
        _scored_up_to[0] = occurred_at


async def wait_loaded() -> None:
    """Return once the rules topic has been read up to its end offsets at start."""
    if not _loaded.is_set():
        log.info("waiting for the rules topic %s to be read before scoring",
                 settings.topic_rules)
        await _loaded.wait()


def apply_record(raw: bytes | None, offset: int) -> None:
    """One record of the rules topic, applied to this worker's book (or refused)."""
    outcome = learn(book, raw, _scored_up_to[0])
    if outcome.refused is not None:
        m.rules_refused.labels(outcome.refused).inc()
        log.warning("rules topic %s@%s ignored, rules kept (active %s): %s",
                    settings.topic_rules, offset, book.at(time.time()).version,
                    outcome.detail)
        return
    rules = outcome.rules
    if rules is None:
        return  # a version known already, the same
    m.rules_applied.inc()
    start = iso(rules.applies_from) if math.isfinite(rules.applies_from) else "the start"
    if outcome.late:
        m.rules_late.inc()
        log.warning("rules version %s arrived late: effective_from %s but this worker has "
                    "scored events up to %s; applied from %s", rules.version,
                    iso(rules.effective_from) if rules.effective_from is not None else "-",
                    iso(_scored_up_to[0]), start)
    else:
        log.info("rules version %s known; applies from %s", rules.version, start)


async def _at_end(consumer: Any, ends: dict[Any, int]) -> bool:
    """True once the consumer's position reached ``ends`` on every partition."""
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def _read_once() -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    from streams.kafka.admin import ensure_topics
    from streams.kafka.clients import client_options

    topic = rules_topic.get_topic_name()
    log.info("reading the rules topic %s", topic)
    try:
        await ensure_topics(settings, [topic])
    except Exception as exc:  # no Create permission: the operator made it (docs/security.md)
        log.warning("could not ensure the rules topic %s exists (%s); reading it", topic, exc)
    # subscribed first, so that the client keeps the topic's metadata; then assigned by hand
    consumer = AIOKafkaConsumer(topic, **client_options(settings), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        while True:
            parts = consumer.partitions_for_topic(topic)
            if parts:
                break
            await asyncio.sleep(0.5)
        consumer.unsubscribe()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for r in records:
                    apply_record(r.value, r.offset)
            if not _loaded.is_set() and await _at_end(consumer, ends):
                _loaded.set()
                log.info("rules topic %s read: %d version(s), active %s", topic,
                         len(book.versions()), book.at(time.time()).version)
    finally:
        await consumer.stop()


@app.task
async def read_rules_topic() -> None:
    """The worker's reader of the rules topic, for its whole life (restarted on errors)."""
    while True:
        try:
            await _read_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the broker went away: read again (known versions stay)
            log.warning("reading the rules topic %s failed (%s); again in 2 s",
                        settings.topic_rules, exc)
            await asyncio.sleep(2.0)


@page("/rules")
async def rules_page(web: Any, request: Any) -> Any:
    """The version that applies now, and every version this worker knows."""
    now = time.time()
    active = book.at(now)
    body = {
        "active": active.version,
        "rules": active.document(),
        "loaded": _loaded.is_set(),
        "scored_up_to": iso(_scored_up_to[0]) if math.isfinite(_scored_up_to[0]) else None,
        "versions": [
            {"version": r.version,
             "effective_from": iso(r.effective_from) if r.effective_from is not None else None,
             "applies_from": iso(r.applies_from) if math.isfinite(r.applies_from) else None}
            for r in book.versions()],
    }
    return web.json(body)
