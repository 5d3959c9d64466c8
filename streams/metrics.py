"""Prometheus metrics of the service, served at ``/metrics`` on the worker's web port.

Label values are bounded by the event schema (touchpoint and channel patterns, a
fixed set of reasons and kinds).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram, disable_created_metrics

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
processing_latency = Histogram(
    "mot_processing_latency_seconds",
    "Time from the worker receiving an event to its alerts being handed to the producer.",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
running_score = Histogram(
    "mot_running_score",
    "Customers' running scores after each moment (negative: value destroyed).",
    buckets=(-100, -48, -24, -12, -6, -3, -1, 0, 1, 3, 6, 12, 24, 48, 100),
)
