"""Which customers of this worker's partitions are in a vicious circle, for the gauge.

The gauge must stay right across rebalances: a worker that loses a partition stops
counting its customers, and one that gains a partition counts the circles opened
there by another worker. So the count is kept per partition, as a set of customer
ids (adding or removing one is idempotent, so a reprocessed event cannot skew it):

* the agent updates the set of the event's partition after every scored moment;
* revoked partitions are dropped;
* once a rebalance's table recovery is complete, every active partition without a
  set is rebuilt from the table's local store (one pass over that partition's
  values);
* the gauge sums the sets of the partitions the worker owns at scrape time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from agents.domain.customer_state import in_vicious_circle
from streams.faust_ext.store_scan import partition_items
from streams.faust_ext.table_access import codec_of, stored_items

log = logging.getLogger(__name__)


class OpenCircles:
    """Customers in a vicious circle, per partition."""

    def __init__(self) -> None:
        self.by_partition: dict[int, set[str]] = {}

    def update(self, partition: int, customer_id: str, is_open: bool) -> None:
        members = self.by_partition.get(partition)
        if members is None:
            members = self.by_partition[partition] = set()
        if is_open:
            members.add(customer_id)
        else:
            members.discard(customer_id)

    def drop(self, partitions: Iterable[int]) -> None:
        for p in partitions:
            self.by_partition.pop(p, None)

    def load(self, partition: int, customers: Iterable[str]) -> None:
        self.by_partition[partition] = set(customers)

    def count(self, partitions: Iterable[int]) -> int:
        return sum(len(self.by_partition.get(p, ())) for p in partitions)


def open_in_partition(table: Any, partition: int, key_partition: Any) -> Iterator[str]:
    """Customers with an open vicious circle among a table partition's local values.

    RocksDB keeps one database per partition (read directly, with the table's codec);
    any other store is scanned whole and filtered with ``key_partition(customer_id)``.
    """
    items = partition_items(table, partition)
    if items is not None:
        decode = codec_of(table).decode
        for raw_key, raw_value in items:
            if raw_value and in_vicious_circle(decode(raw_value)):
                yield orjson.loads(raw_key)
        return
    for customer_id, state in list(stored_items(table)):
        if in_vicious_circle(state) and key_partition(customer_id) == partition:
            yield customer_id
