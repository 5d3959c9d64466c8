"""Consumer lag per partition, exported as ``mot_consumer_lag_messages{topic,partition}``.

Faust does not export lag, and it is the first number an operator looks at when alerts
arrive late: how many records of the partitions this worker owns are not yet committed.
A periodic timer (``MOT_CONSUMER_LAG_INTERVAL_S``) reads the worker's assignment, the
offsets its consumer group committed and the partitions' end offsets, so the per-record
path is untouched. Series of partitions the worker no longer owns after a rebalance are
removed, so the sum over all workers is the group's lag.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import Gauge

from streams import metrics as m
from streams.app import app, settings
from streams.faust_ext.committed_offsets import committed_offsets

log = logging.getLogger(__name__)

Partition = tuple[str, int]


def partition_lags(
    owned: Iterable[Partition],
    committed: Mapping[Partition, int | None],
    end_offsets: Mapping[Partition, int],
    beginning_offsets: Mapping[Partition, int],
) -> dict[Partition, int]:
    """Lag of each owned partition: end offset minus the committed offset.

    A partition without a commit yet is read from its beginning (the group's
    ``auto_offset_reset`` is ``earliest``), so everything retained there is lag.
    A partition whose end offset is unknown is left out rather than guessed.
    """
    lags: dict[Partition, int] = {}
    for tp in owned:
        end = end_offsets.get(tp)
        if end is None:
            continue
        position = committed.get(tp)
        if position is None:
            position = beginning_offsets.get(tp, 0)
        lags[tp] = max(0, end - position)
    return lags


class LagExporter:
    """Keeps a gauge's series equal to the latest lags: sets them, drops the rest."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self.exported: set[Partition] = set()
        self.failing = False

    def publish(self, lags: Mapping[Partition, int]) -> None:
        for (topic, partition), lag in lags.items():
            self.gauge.labels(topic, str(partition)).set(lag)
        for topic, partition in self.exported - set(lags):
            self.gauge.remove(topic, str(partition))
        self.exported = set(lags)


exporter = LagExporter(m.consumer_lag)


async def measure(consumer: Any) -> dict[Partition, int]:
    """Lags of the partitions the worker consumes and commits (its agents' source topics;
    table changelogs are read for recovery, never committed, so they are left out)."""
    conductor = app.topics
    owned = [tp for tp in consumer.assignment() if conductor.acks_enabled_for(tp.topic)]
    if not owned:
        return {}
    ends = await consumer.highwaters(*owned)
    committed = committed_offsets(consumer, owned)
    unstarted = [tp for tp in owned if committed[tp] is None]
    beginnings = await consumer.earliest_offsets(*unstarted) if unstarted else {}
    lags = partition_lags(owned, committed, ends, beginnings)
    return {(tp.topic, tp.partition): lag for tp, lag in lags.items()}


@app.timer(interval=settings.consumer_lag_interval_s)
async def export_consumer_lag() -> None:
    """Runs on every worker; a failure is logged and retried at the next tick, never fatal."""
    if app.rebalancing:
        return  # the assignment is in flux; the next tick sees the new one
    try:
        exporter.publish(await measure(app.consumer))
    except Exception as exc:  # e.g. the consumer is not started yet, a broker timeout
        # warn when measuring starts failing, not at every tick while it keeps failing
        (log.debug if exporter.failing else log.warning)("consumer lag not measured: %r", exc)
        exporter.failing = True
    else:
        exporter.failing = False
