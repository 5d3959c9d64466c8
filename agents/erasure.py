"""Erasure requests: a customer's right to be forgotten, carried out by the worker that
owns the customer's partition, in that partition's context.

Requests come from ``MOT_TOPIC_ERASURE_REQUESTS`` (``mot forget``, or any producer),
keyed by customer id, and are validated against ``erasure-request.v1`` (a bad one goes
to the dead-letter topic with its reason). The topic has the input topic's partition
count, so Faust assigns its partition *p* to the worker running input partition *p*
and its tables; a request on another partition than the customer's events (a producer
with another partitioner, or no key) is re-published to the right one.

Handling a request, as :mod:`agents.silent_journeys` handles its checks (the current
event's partition is the tables' partition):

* ``customer-state`` and ``journey-deadlines`` lose the customer's entry, each with a
  tombstone in its changelog (queued even when the local store had no entry) and the
  key compacted out of the local RocksDB files (:mod:`streams.faust_ext.erase_key`); the
  kept alerts for re-sending live in the customer state and go with it; ``journey-due``
  loses every entry whose key holds the customer id, the same way;
* the open-circle gauge forgets the customer;
* ``stream-clock`` and ``touchpoint-status`` (the andon) hold no per-customer entry:
  afterwards their local keys and values are searched for the id, the three tables above
  and the gauge looked up under it, and the receipt says where it was still found
  (``retained``; empty when none). The andon's in-memory batches hold event times,
  outcomes and event ids, no customer id;
* ``erasure-suppression`` gets the customer's keyed hash (:mod:`agents.suppression`);
* a receipt goes to ``MOT_TOPIC_ERASURE_RECEIPTS`` (``erasure-receipt.v1``, keyed by the
  hash; its id is UUIDv5 of request id and hash, so a request handled twice gives the
  same receipt).

Ordering: the request and the customer's events are on two topics, so there is no order
between them beyond "handled by the same worker, one at a time". An event handled before
the request is erased with the state; one handled after it, even one produced before the
request, meets the suppression entry and follows ``MOT_ERASURE_POLICY``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable
from typing import Any

import orjson
from faust.types import TP

from agents.domain.erasure import (
    Receipt,
    build_receipt,
    holds_id,
    is_suppressed,
    removal,
    removed_anything,
    suppression_entry,
)
from agents.journeys import due_keys_of, journey_deadlines, journey_due, stream_clock
from agents.scoring import customer_state, dead_letter, open_circles
from agents.suppression import erasure_suppression, hashed
from agents.touchpoints import touchpoint_status
from schemas.erasure_request import ErasureRequest, InvalidRequest, decode_request
from streams import metrics as m
from streams.app import app, settings
from streams.faust_ext.erase_key import erase
from streams.faust_ext.table_access import store, stored
from streams.topics import raw_topic

log = logging.getLogger(__name__)

erasure_requests_topic = raw_topic(settings.topic_erasure_requests)
erasure_receipts_topic = raw_topic(settings.topic_erasure_receipts)

CUSTOMER_TABLES = (customer_state, journey_deadlines)  # keyed by customer id
SCANNED_TABLES = (stream_clock, touchpoint_status)  # small, keyed by partition or touchpoint


def _partition_of(customer_id: str) -> int:
    return app.producer.key_partition(settings.topic_events, customer_id.encode()).partition


def _retained(customer_id: str, partition: int) -> list[str]:
    """The stores that still hold the id: an entry under it, or (the small tables that
    are not keyed by customer) a local key or value that mentions it."""
    found = [t.name for t in CUSTOMER_TABLES if stored(t, customer_id) is not None]
    if due_keys_of(customer_id, partition):
        found.append(journey_due.name)
    for table in SCANNED_TABLES:
        if any(holds_id(k, customer_id) or holds_id(v, customer_id)
               for k, v in table.data.items()):
            found.append(table.name)
    members = [p for p, ids in open_circles.by_partition.items() if customer_id in ids]
    if members:
        found.append("open-circles")
    return found


def erase_customer(request: ErasureRequest, partition: int, now: float) -> Receipt:
    """Remove the customer from every store of this partition; the receipt."""
    customer_id = request.customer_id
    chash = hashed(customer_id)
    due = sum(erase(journey_due, key) for key in due_keys_of(customer_id, partition))
    removed = [removal(t.name, "table", erase(t, customer_id),
                       t.changelog_topic.get_topic_name()) for t in CUSTOMER_TABLES]
    removed.append(removal(journey_due.name, "table", due,
                           journey_due.changelog_topic.get_topic_name()))
    in_circle = customer_id in open_circles.by_partition.get(partition, ())
    open_circles.update(partition, customer_id, False)
    removed.append(removal("open-circles", "memory", int(in_circle)))
    prior = stored(erasure_suppression, chash)
    repeat = prior is not None and is_suppressed(prior, now) and not removed_anything(removed)
    if repeat:
        entry = prior
    else:
        entry = suppression_entry(request.request_id, chash, now,
                                  settings.erasure_suppression_s, removed,
                                  str(app.conf.canonical_url))
        store(erasure_suppression, chash, entry)
    checked = ([t.name for t in (*CUSTOMER_TABLES, journey_due, *SCANNED_TABLES)]
               + ["open-circles"])
    return build_receipt(request.request_id, chash, entry, partition, settings.erasure_policy,
                         checked, _retained(customer_id, partition), repeat)


async def handle_request(event: Any) -> None:
    msg = event.message
    try:
        request = decode_request(msg.value)
    except InvalidRequest as exc:
        m.erasures.labels("invalid").inc()
        await dead_letter(msg, exc.reason, exc.detail)
        return
    customer_id = request.customer_id
    right = _partition_of(customer_id)
    if msg.key != customer_id.encode() or msg.partition != right:
        # The tables of the customer live with input partition `right`.
        m.erasures.labels("rerouted").inc()
        await erasure_requests_topic.send(key=customer_id.encode(), value=msg.value,
                                          partition=right)
        return
    if TP(settings.topic_events, msg.partition) not in app.assignor.assigned_actives():
        m.erasures.labels("invalid").inc()
        await dead_letter(msg, "not_copartitioned",
                          f"{settings.topic_erasure_requests} must have the partition count "
                          f"of {settings.topic_events}")
        return
    receipt = erase_customer(request, msg.partition, time.time())
    m.erasures.labels("repeat" if receipt.repeat else "erased").inc()
    await erasure_receipts_topic.send(key=receipt.customer_hash.encode(),
                                      value=orjson.dumps(receipt.value))
    log.info("erasure request %s: customer %s… erased on partition %s (receipt %s%s)",
             request.request_id, receipt.customer_hash[:12], msg.partition,
             receipt.receipt_id, ", repeat" if receipt.repeat else "")


@app.agent(erasure_requests_topic, name="erase-customers")
async def erase_customers(stream: AsyncIterable[Any]) -> None:
    async for event in stream.events():  # type: ignore[attr-defined]
        try:
            await handle_request(event)
        except Exception as exc:  # a defect must not stop the next request: park this one
            msg = event.message
            log.exception("internal error on erasure request %s[%s]@%s; dead-lettered",
                          msg.topic, msg.partition, msg.offset)
            await dead_letter(msg, "internal_error", type(exc).__name__)
