"""The Grafana dashboard of the service, as code: ``dashboards/mot.json`` is generated here.

    python deploy/grafana/dashboard.py          # rewrite dashboards/mot.json
    python deploy/grafana/dashboard.py --check  # exit 1 if the committed JSON is stale

Rows and panels are plain data (:data:`ROWS`); a new metric gets a panel by adding one
``Panel(...)`` to a row, or a row of its own, and re-running this file. Queries select
``job="mot"`` and the ``$instance`` variable; ``$__rate_interval`` and ``$__range`` are
Grafana's own. tests/test_observability_kafka.py runs every query against a real
Prometheus scraping a real worker.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "mot.json"
UID = "mot-overview"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SEL = 'job="mot", instance=~"$instance"'
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str = ""
    heatmap: bool = False  # cumulative buckets, drawn as a heatmap
    instant: bool = False  # only the latest value (rankings, status boards)


@dataclass(frozen=True)
class Panel:
    title: str
    targets: list[Target]
    kind: str = "timeseries"  # any Grafana panel type: stat, heatmap, bargauge, ...
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8
    thresholds: list[tuple[float | None, str]] = field(
        default_factory=lambda: [(None, "green")]
    )
    options: dict[str, Any] = field(default_factory=dict)  # merged over the kind's defaults
    mappings: list[tuple[float, str, str]] = field(default_factory=list)  # value, text, colour


def rate(metric: str, by: str = "") -> str:
    grouping = f"sum by ({by}) " if by else "sum "
    return f"{grouping}(rate({metric}{{{SEL}}}[{RATE}]))"


def quantile(q: float, metric: str, window: str = RATE) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{SEL}}}[{window}])))"


def selected(metric: str, labels: str) -> str:
    """``metric`` with the dashboard's selector and more label matchers."""
    return f"{metric}{{{SEL}, {labels}}}"


ANDON = [(0, "green", "green"), (1, "amber", "orange"), (2, "red", "red")]
DROPPED = selected("mot_journeys_total", 'status="dropped"')
FINISHED = selected("mot_journeys_total", 'status=~"completed|dropped"')


OVERVIEW = [
    Panel("Workers up", [Target(f'sum(up{{{SEL}}})')], kind="stat", width=4,
          description="Workers Prometheus can scrape.",
          thresholds=[(None, "red"), (1, "green")]),
    Panel("Events / s", [Target(rate("mot_events_consumed_total"))], kind="stat", width=5,
          unit="ops", description="Records read from the input topic."),
    Panel("Failed moments / min", [Target(rate("mot_failed_moments_total") + " * 60")],
          kind="stat", width=5, description="Failed moments of truth, all touchpoints."),
    Panel("Dead-lettered share",
          [Target(f'{rate("mot_events_dead_lettered_total")} / '
                  f'{rate("mot_events_consumed_total")}')],
          kind="stat", width=5, unit="percentunit",
          description="Share of input records sent to the dead-letter topic.",
          thresholds=[(None, "green"), (0.01, "orange"), (0.05, "red")]),
    Panel("Consumer lag", [Target(f"sum(mot_consumer_lag_messages{{{SEL}}})")], kind="stat",
          width=5, description="Input records not yet committed, all partitions.",
          thresholds=[(None, "green"), (1000, "orange"), (10000, "red")]),
]

THROUGHPUT = [
    Panel("Event throughput", [
        Target(rate("mot_events_consumed_total"), "consumed"),
        Target(rate("mot_events_valid_total"), "valid"),
        Target(rate("mot_events_dead_lettered_total"), "dead-lettered"),
        Target(rate("mot_events_duplicate_total"), "duplicate"),
        Target(rate("mot_events_rekeyed_total"), "re-keyed"),
    ], unit="ops", description="Records per second, by what became of them."),
    Panel("Alerts emitted by kind", [Target(rate("mot_alerts_emitted_total", "kind"), "{{kind}}")],
          unit="ops", description="Alerts sent to the alert topics."),
]

FAILED_MOMENTS = [
    Panel("Failed moments by touchpoint",
          [Target(rate("mot_failed_moments_total", "touchpoint") + " * 60", "{{touchpoint}}")],
          description="Failed moments of truth per minute."),
    Panel("Failed moments by channel",
          [Target(rate("mot_failed_moments_total", "channel") + " * 60", "{{channel}}")],
          description="Failed moments of truth per minute."),
    Panel("Failed moments by touchpoint and channel (selected range)",
          [Target(f"sum by (touchpoint, channel) "
                  f"(increase(mot_failed_moments_total{{{SEL}}}[$__range]))",
                  "{{touchpoint}} / {{channel}}")],
          kind="bargauge", width=24, height=9,
          description="Where customers fail most, over the dashboard's time range.",
          options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "orientation": "horizontal", "displayMode": "gradient"}),
]

SCORES = [
    Panel("Running score distribution",
          [Target(f"sum by (le) (increase(mot_running_score_bucket{{{SEL}}}[{RATE}]))",
                  "{{le}}", heatmap=True)],
          kind="heatmap",
          description="Customers' running scores after each moment (below 0: value destroyed)."),
    Panel("Running score percentiles", [
        Target(quantile(0.1, "mot_running_score"), "p10"),
        Target(quantile(0.5, "mot_running_score"), "p50"),
        Target(quantile(0.9, "mot_running_score"), "p90"),
    ], description="Score after each moment; p10 shows the customers worst off."),
]

DEAD_LETTERS = [
    Panel("Dead letters by reason",
          [Target(rate("mot_events_dead_lettered_total", "reason"), "{{reason}}")], unit="ops",
          description="Records sent to the dead-letter topic; the reason is also in the "
                      "record's mot.reason header."),
    Panel("Dead-lettered share",
          [Target(f'{rate("mot_events_dead_lettered_total")} / '
                  f'{rate("mot_events_consumed_total")}', "dead-lettered")],
          unit="percentunit", description="Share of input records dead-lettered."),
]

CIRCLES = [
    Panel("Customers in a vicious circle",
          [Target(f"sum(mot_customers_in_vicious_circle{{{SEL}}})")], kind="stat", width=6,
          description="Customers whose vicious circle is open now (3 failed moments within "
                      "72 h while the running score is below 0), all workers.",
          thresholds=[(None, "green"), (1, "orange")]),
    Panel("Circle transitions / min",
          [Target(rate("mot_circle_transitions_total", "kind, lifecycle") + " * 60",
                  "{{kind}} {{lifecycle}}")], width=10,
          description="Lifecycle events sent to mot.alerts.circles: vicious circles opened, "
                      "escalated, resolved; virtuous circles opened, ended."),
    Panel("Vicious circles: opening to resolution (selected range)", [
        Target(quantile(0.5, "mot_vicious_circle_duration_seconds", "$__range"), "p50"),
        Target(quantile(0.9, "mot_vicious_circle_duration_seconds", "$__range"), "p90"),
    ], kind="stat", width=8, unit="s",
        description="Event time from a vicious circle's opening to its resolution (the "
                    "running score back at 0 or above), circles resolved in the range.",
        options={"graphMode": "none", "textMode": "value_and_name"}),
]

JOURNEYS = [
    Panel("Journeys / min",
          [Target(rate("mot_journeys_total", "status") + " * 60", "{{status}}")], width=8,
          description="Journeys opened, completed, dropped (abandoned or silent past the "
                      "timeout) and evicted from a customer's state."),
    Panel("Drop-off share of finished journeys",
          [Target(f"sum(rate({DROPPED}[{RATE}])) / sum(rate({FINISHED}[{RATE}]))",
                  "dropped")],
          width=6, unit="percentunit",
          description="Dropped journeys out of those completed or dropped. Journeys complete "
                      "only at MOT_JOURNEY_END_TOUCHPOINTS or with attributes.journey_end."),
    Panel("Drop-off blame by touchpoint (selected range, top 10)",
          [Target(f"sort_desc(topk(10, sum by (touchpoint) "
                  f"(increase(mot_dropoff_blame_total{{{SEL}}}[$__range]))))",
                  "{{touchpoint}}", instant=True)],
          kind="bargauge", width=10,
          description="Drop-offs' blame shares summed per touchpoint (each drop-off adds 1 "
                      "in all): the touchpoints that lose customers, upstream failures first.",
          options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                   "orientation": "horizontal", "displayMode": "gradient"}),
]

ANDON_BOARD = [
    Panel("Andon board: status by touchpoint",
          [Target(f"max by (touchpoint) (mot_touchpoint_status{{{SEL}}})", "{{touchpoint}}",
                  instant=True)],
          kind="stat", width=24, height=6,
          description="Each touchpoint's status: its failure rate over the andon window "
                      "against its own baseline (amber at 2×, red at 4× by default). Green "
                      "until the window and the baseline hold enough moments to judge.",
          thresholds=[(None, "green"), (1, "orange"), (2, "red")], mappings=ANDON,
          options={"colorMode": "background", "graphMode": "none",
                   "textMode": "value_and_name", "justifyMode": "center",
                   "orientation": "auto"}),
    Panel("Touchpoint failure rate: window and baseline", [
        Target(f"max by (touchpoint) (mot_touchpoint_window_failure_rate{{{SEL}}})",
               "{{touchpoint}} window"),
        Target(f"max by (touchpoint) (mot_touchpoint_baseline_failure_rate{{{SEL}}})",
               "{{touchpoint}} baseline"),
    ], width=24, unit="percentunit",
        description="What the andon judges: the failure rate over the sliding window and "
                    "the touchpoint's baseline (learnt while green)."),
]

LATENCY_AND_LAG = [
    Panel("Processing latency", [
        Target(quantile(0.5, "mot_processing_latency_seconds"), "p50"),
        Target(quantile(0.99, "mot_processing_latency_seconds"), "p99"),
    ], unit="s", description="From the worker receiving an event to its alerts being "
                             "handed to the producer."),
    Panel("Consumer lag by partition",
          [Target(f"sum by (topic, partition) (mot_consumer_lag_messages{{{SEL}}})",
                  "{{topic}} [{{partition}}]")],
          description="End offset minus the consumer group's committed offset."),
    Panel("Consumer lag by worker",
          [Target(f"sum by (instance) (mot_consumer_lag_messages{{{SEL}}})", "{{instance}}")],
          width=24, height=7, description="Each worker reports the partitions it owns."),
]

ROWS: list[tuple[str, list[Panel]]] = [
    ("Overview", OVERVIEW),
    ("Throughput", THROUGHPUT),
    ("Failed moments", FAILED_MOMENTS),
    ("Running scores", SCORES),
    ("Circles", CIRCLES),
    ("Journeys and drop-offs", JOURNEYS),
    ("Touchpoint andon", ANDON_BOARD),
    ("Dead letters", DEAD_LETTERS),
    ("Latency and consumer lag", LATENCY_AND_LAG),
]

KIND_OPTIONS: dict[str, dict[str, Any]] = {
    "timeseries": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                   "tooltip": {"mode": "multi", "sort": "desc"}},
    "stat": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
             "colorMode": "value", "graphMode": "area", "textMode": "auto"},
    "heatmap": {"calculate": False, "yAxis": {"axisPlacement": "left"},
                "color": {"mode": "scheme", "scheme": "Oranges", "steps": 64},
                "cellGap": 1, "tooltip": {"show": True, "yHistogram": True}},
    "bargauge": {},
}


def target_json(t: Target, ref: str) -> dict[str, Any]:
    out: dict[str, Any] = {"refId": ref, "datasource": DATASOURCE, "expr": t.expr,
                           "legendFormat": t.legend, "range": True}
    if t.heatmap:
        out["format"] = "heatmap"
    if t.instant:
        out.update(instant=True, range=False)
    return out


def panel_json(p: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "unit": p.unit,
        "thresholds": {"mode": "absolute",
                       "steps": [{"color": c, "value": v} for v, c in p.thresholds]},
    }
    if p.mappings:
        defaults["mappings"] = [{"type": "value", "options": {
            str(v): {"text": text, "color": colour, "index": i}
            for i, (v, text, colour) in enumerate(p.mappings)}}]
    if p.kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                              "showPoints": "never"}
    return {
        "id": panel_id,
        "type": p.kind,
        "title": p.title,
        "description": p.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": p.height, "w": p.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {**KIND_OPTIONS.get(p.kind, {}), **p.options},
        "targets": [target_json(t, chr(ord("A") + i)) for i, t in enumerate(p.targets)],
    }


def layout(rows: list[tuple[str, list[Panel]]]) -> list[dict[str, Any]]:
    """Rows one under the other; panels left to right, wrapping at Grafana's 24 columns."""
    panels: list[dict[str, Any]] = []
    y = 0
    next_id = 1
    for title, row in rows:
        panels.append({"id": next_id, "type": "row", "title": title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        next_id += 1
        y += 1
        x = 0
        line_height = 0
        for p in row:
            if x + p.width > 24:
                x, y, line_height = 0, y + line_height, 0
            panels.append(panel_json(p, next_id, x, y))
            next_id += 1
            x += p.width
            line_height = max(line_height, p.height)
        y += line_height
    return panels


def dashboard() -> dict[str, Any]:
    return {
        "uid": UID,
        "title": "mot — moments of truth",
        "description": "Touchpoint events, failed moments of truth, running scores, "
                       "circles, journeys and drop-offs, the touchpoint andon, dead "
                       "letters, latency and consumer lag of the mot workers.",
        "tags": ["mot", "kafka", "faust"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "schemaVersion": 39,
        "version": 1,
        "links": [],
        "annotations": {"list": []},
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource",
             "query": "prometheus", "current": {}, "hide": 0, "refresh": 1},
            {"name": "instance", "label": "Worker", "type": "query", "datasource": DATASOURCE,
             "query": {"query": 'label_values(up{job="mot"}, instance)', "refId": "instance"},
             "definition": 'label_values(up{job="mot"}, instance)', "refresh": 2,
             "includeAll": True, "multi": True, "allValue": ".*", "sort": 1,
             "current": {"selected": True, "text": ["All"], "value": ["$__all"]}},
        ]},
        "panels": layout(ROWS),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
