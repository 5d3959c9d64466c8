"""What stays of an erased customer: a keyed hash in the ``erasure-suppression`` table,
and what the scoring agent does with their later events.

The table is keyed by the keyed hash of the customer id (never the id) and partitioned
like ``customer-state``: the erasure agent (:mod:`agents.erasure`) writes an entry in the
partition of the customer's events, and the scoring agent reads it there. During
``MOT_ERASURE_SUPPRESSION_S`` after the erasure, a later event of the customer follows
``MOT_ERASURE_POLICY`` (:func:`suppressed`). Only events of customers without a state are
looked up (a first moment, or a rejected record), so known customers cost nothing.

The same hash stands for the customer in alerts when ``MOT_ALERT_CUSTOMER_ID=hashed``
(:func:`alert_record`).
"""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from agents.domain.erasure import (
    ACCEPT,
    DEAD_LETTER,
    ERASED,
    choose_key,
    customer_hash,
    is_first_moment,
    is_suppressed,
    with_customer_hash,
)
from agents.domain.moment_processor import Output, Processed
from streams import metrics as m
from streams.app import app, settings
from streams.dead_letters import CUSTOMER_HASH, stream_headers
from streams.faust_ext.batch_delivery import timestamp_s
from streams.faust_ext.table_access import discard, stored
from streams.topics import dead_letter_topic

erasure_suppression = app.Table("erasure-suppression", default=None, key_type=str,
                                partitions=settings.partitions)


@cache
def hash_key() -> bytes:
    """The key of the keyed hash (raises :class:`HashKeyMissing` beyond loopback)."""
    path = settings.erasure_hash_key_file
    from_file = Path(path).read_bytes() if path else None
    return choose_key(from_file, settings.erasure_hash_key, settings.kafka_bootstrap_servers)


def hashed(customer_id: str) -> str:
    return customer_hash(hash_key(), customer_id)


def _customer_of(record: Any, done: Processed) -> str | None:
    """The customer a record is about, when it needs looking up: a rejected record (by
    its event's id or its key), or the first moment of a customer without a state."""
    if done.rejected is not None:
        if done.customer_id is not None:
            return done.customer_id
        key = record.key
        if not key:
            return None
        try:
            return key.decode() if isinstance(key, bytes) else str(key)
        except UnicodeDecodeError:
            return None
    if done.state is None or done.result is None or done.result.duplicate:
        return None
    return done.customer_id if is_first_moment(done.state) else None


async def suppressed(record: Any, done: Processed) -> bool:
    """True when the record is an erased customer's, within the suppression period, and was
    dead-lettered (``erased``, no key or payload) or dropped here; the agent then stops.
    With ``accept`` it is counted and goes on as a new customer's."""
    customer_id = _customer_of(record, done)
    if customer_id is None:
        return False
    chash = hashed(customer_id)
    entry = stored(erasure_suppression, chash)
    if entry is None:
        return False
    if not is_suppressed(entry, time.time()):
        discard(erasure_suppression, chash)  # the period is over: the hash goes too
        return False
    policy = settings.erasure_policy
    m.erasure_suppressed.labels(policy).inc()
    if policy == ACCEPT:
        return False
    if policy == DEAD_LETTER:
        m.events_dead_lettered.labels(ERASED).inc()
        # Neither the record's key nor its payload: the customer hash and where it was read.
        await dead_letter_topic.send(
            key=chash.encode(),
            value=b"",
            headers=[*stream_headers(ERASED, "the customer was erased; the record's key and "
                                     "payload are not copied", record.topic,
                                     record.partition, record.offset, timestamp_s(record)),
                     (CUSTOMER_HASH, chash.encode())],
        )
    return True


def alert_record(out: Output) -> tuple[bytes, bytes]:
    """(key, value) of a customer alert, with the keyed hash for the customer id when
    ``MOT_ALERT_CUSTOMER_ID=hashed``."""
    if settings.alert_customer_id == "hashed":
        chash = hashed(out.key)
        return chash.encode(), orjson.dumps(with_customer_hash(out.value, chash))
    return out.key.encode(), orjson.dumps(out.value)
