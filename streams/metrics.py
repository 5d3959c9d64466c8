"""Prometheus metrics of the service, served at ``/metrics`` on the worker's web port.

Label values are bounded by the event schema (touchpoint and channel patterns, a
fixed set of reasons and kinds).
"""

from __future__ import annotations

import math
import sys
from bisect import bisect_left
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

disable_created_metrics()  # the *_created series only double the scrape size

events_consumed = Counter("mot_events_consumed_total", "Records read from the input topic.")
events_valid = Counter("mot_events_valid_total", "Records that passed schema v1 validation.")
events_dead_lettered = Counter(
    "mot_events_dead_lettered_total",
    "Records sent to the dead-letter topic, by machine-readable reason.",
    ["reason"],
)
events_duplicate = Counter(
    "mot_events_duplicate_total", "Events whose event_id was already counted for the customer."
)
events_rekeyed = Counter(
    "mot_events_rekeyed_total",
    "Valid events whose record key was not their customer_id, re-published under the right key.",
)
failed_moments = Counter(
    "mot_failed_moments_total", "Failed moments of truth.", ["touchpoint", "channel"]
)
alerts_emitted = Counter("mot_alerts_emitted_total", "Alerts sent, by kind.", ["kind"])


class LoopHistogram:
    """A histogram observed on every event, kept as plain bucket counts.

    prometheus_client's ``Histogram.observe`` takes two locks and walks the bounds, about
    2 µs an observation here, twice an event; this one does a bisection and two adds. It
    is written by the scoring agent and read by the scrape, both on the worker's event
    loop, so it needs no lock. Its samples (``_bucket`` per ``le``, ``_count``, ``_sum``)
    are those of a ``Histogram`` with the same name and buckets.
    """

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...],
                 registry: CollectorRegistry | None = REGISTRY) -> None:
        self.name = name
        self.documentation = documentation
        self.bounds = [float(b) for b in buckets]
        if self.bounds[-1] != math.inf:
            self.bounds.append(math.inf)
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0
        if registry is not None:
            registry.register(self)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def describe(self) -> list[HistogramMetricFamily]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> list[HistogramMetricFamily]:
        buckets, total = [], 0
        for bound, n in zip(self.bounds, self.counts, strict=True):
            total += n
            buckets.append((floatToGoString(bound), total))
        family = HistogramMetricFamily(self.name, self.documentation, buckets=buckets)
        # As Histogram: _count always, _sum only without negative bounds.
        family.samples.append(Sample(f"{self.name}_count", {}, float(total)))
        if self.bounds[0] >= 0:
            family.samples.append(Sample(f"{self.name}_sum", {}, self.sum))
        return [family]


processing_latency = LoopHistogram(
    "mot_processing_latency_seconds",
    "Time from the worker receiving an event to its alerts being handed to the producer.",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
running_score = LoopHistogram(
    "mot_running_score",
    "Customers' running scores after each moment (negative: value destroyed).",
    buckets=(-100, -48, -24, -12, -6, -3, -1, 0, 1, 3, 6, 12, 24, 48, 100),
)
consumer_lag = Gauge(
    "mot_consumer_lag_messages",
    "Records of an owned partition not yet committed by the consumer group (end - committed).",
    ["topic", "partition"],
)
dropoff_blame = Counter(
    "mot_dropoff_blame_total",
    "Drop-offs' blame shares summed per touchpoint (each drop-off adds 1 in all): "
    "the touchpoints that lose customers rank first.",
    ["touchpoint"],
)
journeys = Counter(
    "mot_journeys_total",
    "Journeys by what happened to them: opened, completed, dropped, evicted.",
    ["status"],
)
touchpoint_observations_late = Counter(
    "mot_touchpoint_observations_late_total",
    "Moments too old for their touchpoint's andon window (not counted in it).",
)
customers_in_vicious_circle = Gauge(
    "mot_customers_in_vicious_circle",
    "Customers of this worker's partitions whose vicious circle is open (sum over workers).",
)
circle_transitions = Counter(
    "mot_circle_transitions_total",
    "Circle lifecycle events sent, by kind (vicious-circle, virtuous-circle) and lifecycle.",
    ["kind", "lifecycle"],
)
vicious_circle_duration = Histogram(
    "mot_vicious_circle_duration_seconds",
    "Event time from a vicious circle's opening to its resolution.",
    buckets=(3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 3 * 86400, 7 * 86400, 14 * 86400,
             30 * 86400, 60 * 86400, 90 * 86400),
)

# Create the fixed label values at start: a counter that first appears at its first
# increment hides that increment from rate() and increase() after every restart.
for _status in ("opened", "completed", "dropped", "evicted"):
    journeys.labels(_status)
for _kind, _lifecycles in (("vicious-circle", ("opened", "escalated", "resolved")),
                           ("virtuous-circle", ("opened", "ended"))):
    for _lifecycle in _lifecycles:
        circle_transitions.labels(_kind, _lifecycle)
for _kind in ("failed-moment", "vicious-circle", "virtuous-circle", "drop-off",
              "touchpoint-status"):
    alerts_emitted.labels(_kind)

erasures = Counter(
    "mot_erasures_total",
    "Erasure requests handled, by outcome: erased (entries removed or first handling), "
    "repeat (already erased: the same receipt again), rerouted (wrong key or partition: "
    "re-published), invalid (dead-lettered).",
    ["outcome"],
)
erasure_suppressed = Counter(
    "mot_erasure_suppressed_total",
    "Later records of erased customers within the suppression period, by the policy "
    "applied (dead-letter, drop-counted, accept).",
    ["policy"],
)
for _outcome in ("erased", "repeat", "rerouted", "invalid"):
    erasures.labels(_outcome)
for _policy in ("dead-letter", "drop-counted", "accept"):
    erasure_suppressed.labels(_policy)
rules_refused = Counter(
    "mot_rules_refused_total",
    "Records of the rules topic a worker ignored (it kept its rules), by reason: invalid, "
    "conflict (a known version with other values).",
    ["reason"],
)
rules_applied = Counter(
    "mot_rules_versions_total", "Versions of the rules a worker learnt from the rules topic.")
rules_late = Counter(
    "mot_rules_late_total",
    "Versions learnt after this worker had scored events at or after their effective_from: "
    "applied from the latest event time scored instead (docs/rules.md).",
)

_APP_MODULE = "streams.app"


def restore_progress() -> Any:
    """The worker's restore figures (``streams.faust_ext.batched_restore``), ``None``
    in a process without the worker's app."""
    app_module = sys.modules.get(_APP_MODULE)  # not built here: replay has no worker
    if app_module is None:
        return None
    progress = getattr(app_module.app.tables.recovery, "progress", None)
    return progress() if progress is not None else None


class RestoreCollector(Collector):
    """Restore figures read at scrape time: the restore counts nothing per record for
    Prometheus."""

    def collect(self) -> Iterator[Any]:
        progress = restore_progress()
        if progress is None:
            return
        restored = CounterMetricFamily(
            "mot_restore_records", "Changelog records applied to the local tables, by kind "
            "(active: restored from the changelogs; standby: applied to standby copies).",
            labels=["kind"])
        restored.add_metric(["active"], progress.records_restored_total)
        restored.add_metric(["standby"], progress.standby_records_applied)
        yield restored
        yield GaugeMetricFamily(
            "mot_restore_records_remaining",
            "Changelog records the worker must still restore before it serves (0 while "
            "not known yet).",
            value=progress.records_remaining or 0)
        yield GaugeMetricFamily(
            "mot_restore_in_progress", "1 while the worker restores its tables.",
            value=1 if progress.recovering else 0)


REGISTRY.register(RestoreCollector())

# --- per-batch counting -------------------------------------------------------------
# A labelled child looked up per event costs a lock and a dict lookup in prometheus_client,
# every increment another lock: the scoring agent counts a batch's events here and adds
# them to the metrics once per batch.

_children: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: Any, *labels: str) -> Any:
    """``metric.labels(*labels)``, looked up once (label values are bounded: see above)."""
    key = (id(metric), labels)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*labels)
    return found


class Tally:
    """The metric updates of one batch, applied together by :meth:`apply`: increments
    summed per counter (one locked add each), observations kept in order."""

    __slots__ = ("counts", "observed")

    def __init__(self) -> None:
        self.counts: dict[Any, float] = {}
        self.observed: dict[Any, list[float]] = {}

    def inc(self, counter: Any, amount: float = 1.0) -> None:
        self.counts[counter] = self.counts.get(counter, 0.0) + amount

    def observe(self, histogram: Any, value: float) -> None:
        if isinstance(histogram, LoopHistogram):  # cheap: at once
            histogram.observe(value)
            return
        values = self.observed.get(histogram)
        if values is None:
            values = self.observed[histogram] = []
        values.append(value)

    def apply(self) -> None:
        for counter, amount in self.counts.items():
            counter.inc(amount)
        for histogram, values in self.observed.items():
            observe = histogram.observe
            for v in values:
                observe(v)
        self.counts.clear()
        self.observed.clear()

