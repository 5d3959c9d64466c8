"""The Grafana dashboard of the service, as code: ``dashboards/mot.json`` is generated here.

    python deploy/grafana/dashboard.py          # rewrite dashboards/mot.json
    python deploy/grafana/dashboard.py --check  # exit 1 if the committed JSON is stale

Panels are built with Grafana's own dashboards-as-code library, grafana-foundation-sdk
(``pip install -e '.[dashboards]'``; its builders are typed against Grafana's panel schemas,
so a misspelt option fails here rather than in Grafana). A new metric gets a panel by adding
a builder to a row in :func:`rows` and re-running this file. Each row's panels are laid left
to right by the SDK and must add up to Grafana's 24 columns a line. Queries select
``job="mot"`` and the ``$instance`` variable; ``$__rate_interval`` and ``$__range`` are
Grafana's own. tests/test_observability_kafka.py runs every query against a real
Prometheus scraping a real worker.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TypeVar

from grafana_foundation_sdk.builders import bargauge, heatmap, prometheus, stat, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.heatmap import HeatmapColorMode
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

OUTPUT = Path(__file__).resolve().parent / "dashboards" / "mot.json"
UID = "mot-overview"
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
SEL = 'job="mot", instance=~"$instance"'
RATE = "$__rate_interval"

AnyPanel = TypeVar("AnyPanel", timeseries.Panel, stat.Panel, bargauge.Panel, heatmap.Panel)


# --- PromQL ------------------------------------------------------------------------------

def rate(metric: str, by: str = "") -> str:
    grouping = f"sum by ({by}) " if by else "sum "
    return f"{grouping}(rate({metric}{{{SEL}}}[{RATE}]))"


def quantile(q: float, metric: str, window: str = RATE) -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{SEL}}}[{window}])))"


def selected(metric: str, labels: str) -> str:
    """``metric`` with the dashboard's selector and more label matchers."""
    return f"{metric}{{{SEL}, {labels}}}"


DROPPED = selected("mot_journeys_total", 'status="dropped"')
FINISHED = selected("mot_journeys_total", 'status=~"completed|dropped"')
DEAD_LETTERED_SHARE = (f'{rate("mot_events_dead_lettered_total")} / '
                       f'{rate("mot_events_consumed_total")}')


# --- panel vocabulary --------------------------------------------------------------------

def query(expr: str, legend: str = "") -> prometheus.Dataquery:
    """A range query on the dashboard's Prometheus."""
    return prometheus.Dataquery().datasource(DATASOURCE).expr(expr).legend_format(legend).range()


def instant(expr: str, legend: str = "") -> prometheus.Dataquery:
    """Only the latest value: rankings and status boards."""
    return query(expr, legend).instant()


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(
        [dm.Threshold(value=v, color=c) for v, c in steps])


GREEN = thresholds((None, "green"))


def panel(builder: AnyPanel, title: str, description: str, *queries: prometheus.Dataquery,
          unit: str = "short", width: int = 12, height: int = 8,
          steps: db.ThresholdsConfig = GREEN) -> AnyPanel:
    """What every panel has: its queries (refIds A, B, …), datasource, unit, size."""
    for i, q in enumerate(queries):
        builder.with_target(q.ref_id(chr(ord("A") + i)))
    return (builder.title(title).description(description).datasource(DATASOURCE)
            .unit(unit).thresholds(steps).overrides([]).span(width).height(height))


def lines(title: str, description: str, *queries: prometheus.Dataquery,
          unit: str = "short", width: int = 12, height: int = 8) -> timeseries.Panel:
    """A time series: thin lines, light fill, the legend below, a sorted shared tooltip."""
    ts = (timeseries.Panel()
          .legend(cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST)
                  .placement(cm.LegendPlacement.BOTTOM).show_legend(True))
          .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI)
                   .sort(cm.SortOrder.DESCENDING))
          .draw_style(cm.GraphDrawStyle.LINE).line_width(1).fill_opacity(10)
          .show_points(cm.VisibilityMode.NEVER))
    return panel(ts, title, description, *queries, unit=unit, width=width, height=height)


def last_value() -> cb.ReduceDataOptions:
    return cb.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)


def big_number(title: str, description: str, *queries: prometheus.Dataquery,
               unit: str = "short", width: int = 12, height: int = 8,
               steps: db.ThresholdsConfig = GREEN) -> stat.Panel:
    """A stat: the last value, coloured by its thresholds, with a sparkline."""
    s = (stat.Panel().reduce_options(last_value()).color_mode(cm.BigValueColorMode.VALUE)
         .graph_mode(cm.BigValueGraphMode.AREA).text_mode(cm.BigValueTextMode.AUTO))
    return panel(s, title, description, *queries, unit=unit, width=width, height=height,
                 steps=steps)


def bars(title: str, description: str, *queries: prometheus.Dataquery,
         width: int = 12, height: int = 8) -> bargauge.Panel:
    """Horizontal gradient bars of each series' last value: a ranking."""
    b = (bargauge.Panel().reduce_options(last_value())
         .orientation(cm.VizOrientation.HORIZONTAL)
         .display_mode(cm.BarGaugeDisplayMode.GRADIENT))
    return panel(b, title, description, *queries, width=width, height=height)


# --- rows --------------------------------------------------------------------------------

def overview() -> list[stat.Panel]:
    return [
        big_number("Workers up", "Workers Prometheus can scrape.",
                   query(f"sum(up{{{SEL}}})"), width=4,
                   steps=thresholds((None, "red"), (1, "green"))),
        big_number("Events / s", "Records read from the input topic.",
                   query(rate("mot_events_consumed_total")), width=5, unit="ops"),
        big_number("Failed moments / min", "Failed moments of truth, all touchpoints.",
                   query(rate("mot_failed_moments_total") + " * 60"), width=5),
        big_number("Dead-lettered share",
                   "Share of input records sent to the dead-letter topic.",
                   query(DEAD_LETTERED_SHARE), width=5, unit="percentunit",
                   steps=thresholds((None, "green"), (0.01, "orange"), (0.05, "red"))),
        big_number("Consumer lag", "Input records not yet committed, all partitions.",
                   query(f"sum(mot_consumer_lag_messages{{{SEL}}})"), width=5,
                   steps=thresholds((None, "green"), (1000, "orange"), (10000, "red"))),
    ]


def throughput() -> list[timeseries.Panel]:
    return [
        lines("Event throughput", "Records per second, by what became of them.",
              query(rate("mot_events_consumed_total"), "consumed"),
              query(rate("mot_events_valid_total"), "valid"),
              query(rate("mot_events_dead_lettered_total"), "dead-lettered"),
              query(rate("mot_events_duplicate_total"), "duplicate"),
              query(rate("mot_events_rekeyed_total"), "re-keyed"), unit="ops"),
        lines("Alerts emitted by kind", "Alerts sent to the alert topics.",
              query(rate("mot_alerts_emitted_total", "kind"), "{{kind}}"), unit="ops"),
    ]


def failed_moments() -> list[timeseries.Panel | bargauge.Panel]:
    return [
        lines("Failed moments by touchpoint", "Failed moments of truth per minute.",
              query(rate("mot_failed_moments_total", "touchpoint") + " * 60",
                    "{{touchpoint}}")),
        lines("Failed moments by channel", "Failed moments of truth per minute.",
              query(rate("mot_failed_moments_total", "channel") + " * 60", "{{channel}}")),
        bars("Failed moments by touchpoint and channel (selected range)",
             "Where customers fail most, over the dashboard's time range.",
             query(f"sum by (touchpoint, channel) "
                   f"(increase(mot_failed_moments_total{{{SEL}}}[$__range]))",
                   "{{touchpoint}} / {{channel}}"), width=24, height=9),
    ]


def scores() -> list[heatmap.Panel | timeseries.Panel]:
    distribution = (heatmap.Panel().calculate(False)
                    .y_axis(heatmap.YAxisConfig().axis_placement(cm.AxisPlacement.LEFT))
                    .color(heatmap.HeatmapColorOptions().mode(HeatmapColorMode.SCHEME)
                           .scheme("Oranges").steps(64))
                    .cell_gap(1).mode(cm.TooltipDisplayMode.SINGLE).show_y_histogram())
    buckets = query(f"sum by (le) (increase(mot_running_score_bucket{{{SEL}}}[{RATE}]))",
                    "{{le}}").format(PromQueryFormat.HEATMAP)
    return [
        panel(distribution, "Running score distribution",
              "Customers' running scores after each moment (below 0: value destroyed).",
              buckets),
        lines("Running score percentiles",
              "Score after each moment; p10 shows the customers worst off.",
              query(quantile(0.1, "mot_running_score"), "p10"),
              query(quantile(0.5, "mot_running_score"), "p50"),
              query(quantile(0.9, "mot_running_score"), "p90")),
    ]


def circles() -> list[stat.Panel | timeseries.Panel]:
    duration = "mot_vicious_circle_duration_seconds"
    return [
        big_number("Customers in a vicious circle",
                   "Customers whose vicious circle is open now (3 failed moments within "
                   "72 h while the running score is below 0), all workers.",
                   query(f"sum(mot_customers_in_vicious_circle{{{SEL}}})"), width=6,
                   steps=thresholds((None, "green"), (1, "orange"))),
        lines("Circle transitions / min",
              "Lifecycle events sent to mot.alerts.circles: vicious circles opened, "
              "escalated, resolved; virtuous circles opened, ended.",
              query(rate("mot_circle_transitions_total", "kind, lifecycle") + " * 60",
                    "{{kind}} {{lifecycle}}"), width=10),
        big_number("Vicious circles: opening to resolution (selected range)",
                   "Event time from a vicious circle's opening to its resolution (the "
                   "running score back at 0 or above), circles resolved in the range.",
                   query(quantile(0.5, duration, "$__range"), "p50"),
                   query(quantile(0.9, duration, "$__range"), "p90"), width=8, unit="s")
        .graph_mode(cm.BigValueGraphMode.NONE).text_mode(cm.BigValueTextMode.VALUE_AND_NAME),
    ]


def journeys() -> list[timeseries.Panel | bargauge.Panel]:
    return [
        lines("Journeys / min",
              "Journeys opened, completed, dropped (abandoned or silent past the "
              "timeout) and evicted from a customer's state.",
              query(rate("mot_journeys_total", "status") + " * 60", "{{status}}"), width=8),
        lines("Drop-off share of finished journeys",
              "Dropped journeys out of those completed or dropped. Journeys complete "
              "only at MOT_JOURNEY_END_TOUCHPOINTS or with attributes.journey_end.",
              query(f"sum(rate({DROPPED}[{RATE}])) / sum(rate({FINISHED}[{RATE}]))",
                    "dropped"), width=6, unit="percentunit"),
        bars("Drop-off blame by touchpoint (selected range, top 10)",
             "Drop-offs' blame shares summed per touchpoint (each drop-off adds 1 "
             "in all): the touchpoints that lose customers, upstream failures first.",
             instant(f"sort_desc(topk(10, sum by (touchpoint) "
                     f"(increase(mot_dropoff_blame_total{{{SEL}}}[$__range]))))",
                     "{{touchpoint}}"), width=10),
    ]


ANDON = [(0, "green", "green"), (1, "amber", "orange"), (2, "red", "red")]


def andon() -> list[stat.Panel | timeseries.Panel]:
    status = dm.ValueMap(options={
        str(v): dm.ValueMappingResult(text=text, color=colour, index=i)
        for i, (v, text, colour) in enumerate(ANDON)})
    return [
        big_number("Andon board: status by touchpoint",
                   "Each touchpoint's status: its failure rate over the andon window "
                   "against its own baseline (amber at 2×, red at 4× by default). Green "
                   "until the window and the baseline hold enough moments to judge.",
                   instant(f"max by (touchpoint) (mot_touchpoint_status{{{SEL}}})",
                           "{{touchpoint}}"), width=24, height=6,
                   steps=thresholds((None, "green"), (1, "orange"), (2, "red")))
        .mappings([status]).color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE).text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .justify_mode(cm.BigValueJustifyMode.CENTER).orientation(cm.VizOrientation.AUTO),
        lines("Touchpoint failure rate: window and baseline",
              "What the andon judges: the failure rate over the sliding window and "
              "the touchpoint's baseline (learnt while green).",
              query(f"max by (touchpoint) (mot_touchpoint_window_failure_rate{{{SEL}}})",
                    "{{touchpoint}} window"),
              query(f"max by (touchpoint) (mot_touchpoint_baseline_failure_rate{{{SEL}}})",
                    "{{touchpoint}} baseline"), width=24, unit="percentunit"),
    ]


def dead_letters() -> list[timeseries.Panel]:
    return [
        lines("Dead letters by reason",
              "Records sent to the dead-letter topic; the reason is also in the "
              "record's mot.reason header.",
              query(rate("mot_events_dead_lettered_total", "reason"), "{{reason}}"),
              unit="ops"),
        lines("Dead-lettered share", "Share of input records dead-lettered.",
              query(DEAD_LETTERED_SHARE, "dead-lettered"), unit="percentunit"),
    ]


def latency_and_lag() -> list[timeseries.Panel]:
    return [
        lines("Processing latency",
              "From the worker receiving an event to its alerts being handed to the producer.",
              query(quantile(0.5, "mot_processing_latency_seconds"), "p50"),
              query(quantile(0.99, "mot_processing_latency_seconds"), "p99"), unit="s"),
        lines("Consumer lag by partition",
              "End offset minus the consumer group's committed offset.",
              query(f"sum by (topic, partition) (mot_consumer_lag_messages{{{SEL}}})",
                    "{{topic}} [{{partition}}]")),
        lines("Consumer lag by worker", "Each worker reports the partitions it owns.",
              query(f"sum by (instance) (mot_consumer_lag_messages{{{SEL}}})",
                    "{{instance}}"), width=24, height=7),
    ]


def rows() -> list[tuple[str, list[AnyPanel]]]:
    """Fresh builders each call: the SDK's layout writes positions into what it is given."""
    return [
        ("Overview", overview()),
        ("Throughput", throughput()),
        ("Failed moments", failed_moments()),
        ("Running scores", scores()),
        ("Circles", circles()),
        ("Journeys and drop-offs", journeys()),
        ("Touchpoint andon", andon()),
        ("Dead letters", dead_letters()),
        ("Latency and consumer lag", latency_and_lag()),
    ]


# --- the dashboard -----------------------------------------------------------------------

def variables() -> list[db.DatasourceVariable | db.QueryVariable]:
    workers = 'label_values(up{job="mot"}, instance)'
    return [
        db.DatasourceVariable("datasource").label("Prometheus").type("prometheus")
        .hide(dm.VariableHide.DONT_HIDE),
        db.QueryVariable("instance").label("Worker").datasource(DATASOURCE)
        .query({"query": workers, "refId": "instance"})
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True).multi(True).all_value(".*").sort(dm.VariableSort.ALPHABETICAL_ASC)
        .current(dm.VariableOption(selected=True, text=["All"], value=["$__all"])),
    ]


def dashboard() -> dm.Dashboard:
    """Rows one under the other, expanded; panel ids in reading order."""
    builder = (
        db.Dashboard("mot — moments of truth").uid(UID)
        .description("Touchpoint events, failed moments of truth, running scores, "
                     "circles, journeys and drop-offs, the touchpoint andon, dead "
                     "letters, latency and consumer lag of the mot workers.")
        .tags(["mot", "kafka", "faust"]).timezone("browser").editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR).refresh("30s").time("now-1h", "now")
        .version(1).links([]).annotations([]).variables(variables())
    )
    next_id = 1
    for title, panels in rows():
        builder.with_row(db.Row(title).id(next_id))
        next_id += 1
        for p in panels:
            builder.with_panel(p.id(next_id))
            next_id += 1
    return builder.build()


def render() -> str:
    return json.dumps(dashboard(), cls=JSONEncoder, indent=2, ensure_ascii=False) + "\n"


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
