"""The report (``agents.domain.report``) as a terminal table, JSON, or one HTML page.

The HTML page is self-contained: plotly.js is inlined, nothing is loaded from the
network, and the rankings are plain HTML tables (readable without JavaScript) beside
the charts.
"""

from __future__ import annotations

import html
from typing import Any

import orjson

RANKINGS = (
    ("by_value_destroyed", "Touchpoints by value destroyed",
     "Σ of the negative contributions of their moments to running scores"),
    ("by_failure_rate", "Touchpoints by failure rate", "failed moments / moments"),
    ("by_drop_off_blame", "Touchpoints by blame in drop-offs",
     "Σ of their shares of the blame named by drop-off alerts"),
)
COLUMNS = (
    ("touchpoint", "touchpoint", "{}"),
    ("moments", "moments", "{:,}"),
    ("failures", "failed", "{:,}"),
    ("failure_rate", "fail rate", "{:.1%}"),
    ("value_destroyed", "value destroyed", "{:,.2f}"),
    ("value_created", "value created", "{:,.2f}"),
    ("drop_off_blame", "drop-off blame", "{:,.2f}"),
)


def render_json(report: dict[str, Any]) -> str:
    return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n"


def _cells(row: dict[str, Any]) -> list[str]:
    return [fmt.format(row[key]) for key, _, fmt in COLUMNS]


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def render_table(report: dict[str, Any]) -> str:
    """A readable report for a terminal (plain text, fixed-width columns)."""
    t = report["totals"]
    out = [
        "Moments of truth — report",
        f"{t['records']:,} records: {t['scored']:,} moments scored, {t['duplicates']:,}"
        f" duplicates, {t['rejected']:,} rejected; {t['customers']:,} customers,"
        f" {t['touchpoints']:,} touchpoints; value destroyed {t['value_destroyed']:,.2f}",
    ]
    if t["rejected_by_reason"]:
        out.append("rejected: " + ", ".join(f"{r} {n:,}"
                                            for r, n in t["rejected_by_reason"].items()))
    out.append("alerts: " + (", ".join(f"{k} {n:,}" for k, n in t["alerts_by_kind"].items())
                             or "none"))
    out.append("")
    if report["candidates"]:
        out.append("Fewer are better — candidates to fix or remove:")
        for i, c in enumerate(report["candidates"], 1):
            out.append(f"  {i}. {c['touchpoint']}: destroys {c['value_destroyed']:,.2f}"
                       f" ({c['share']:.0%} of all value destroyed)")
    else:
        out.append("No moment destroyed value.")
    headers = [label for _, label, _ in COLUMNS]
    for key, title, why in RANKINGS:
        out += ["", f"{title} ({why})"]
        rows = report[key]
        out += _table(headers, [_cells(r) for r in rows]) if rows else ["  none"]
    vc = report["vicious_circles"]
    out += ["", f"Customers in a vicious circle at the end: {vc['open']:,}"]
    out += [f"  {c['customer_id']} ({c['severity'] or 'open'})" for c in vc["customers"]] \
        or ["  none"]
    if vc["open"] > len(vc["customers"]):
        out.append(f"  … and {vc['open'] - len(vc['customers']):,} more")
    fs = report["final_scores"]
    out += ["", f"Final running scores ({fs['customers']:,} customers, {fs['negative']:,}"
            " below zero)"]
    if fs["customers"]:
        out.append(f"  min {fs['min']:,.2f}  median {fs['median']:,.2f}  mean {fs['mean']:,.2f}"
                   f"  max {fs['max']:,.2f}")
        peak = max(b["customers"] for b in fs["bins"]) or 1
        width = max(len(b["range"]) for b in fs["bins"])
        for b in fs["bins"]:
            bar = "#" * round(40 * b["customers"] / peak)
            out.append(f"  {b['range'].rjust(width)}  {b['customers']:>7,}  {bar}")
    return "\n".join(out) + "\n"


def _html_table(rows: list[dict[str, Any]], css_id: str) -> str:
    if not rows:
        return f'<p class="none" id="{css_id}">none</p>'
    head = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _cells(r)) + "</tr>"
        for r in rows
    )
    return (f'<table id="{css_id}"><thead><tr><th>#</th>{head}</tr></thead><tbody>'
            + body.replace("<tr>", "<tr><td></td>") + "</tbody></table>")


def _bar_figure(rows: list[dict[str, Any]], value: str, title: str, fmt: str) -> Any:
    import plotly.graph_objects as go

    names = [r["touchpoint"] for r in rows][::-1]  # plotly draws the first bar at the bottom
    values = [r[value] for r in rows][::-1]
    fig = go.Figure(go.Bar(x=values, y=names, orientation="h", marker_color="#c0392b",
                           texttemplate=fmt, textposition="outside"))
    fig.update_layout(title=title, template="plotly_white", height=80 + 28 * len(rows),
                      margin={"l": 10, "r": 40, "t": 50, "b": 30})
    fig.update_yaxes(automargin=True)
    return fig


def _score_figure(final_scores: dict[str, Any]) -> Any:
    import plotly.graph_objects as go

    bins = final_scores["bins"]
    fig = go.Figure(go.Bar(x=[b["range"] for b in bins], y=[b["customers"] for b in bins],
                           marker_color="#2c3e50"))
    fig.update_layout(title="Final running scores (customers per range)",
                      template="plotly_white", height=340,
                      margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return fig


def render_html(report: dict[str, Any], title: str = "Moments of truth — report") -> str:
    """One self-contained page: inlined plotly.js, charts and the ranked tables."""
    from plotly.offline import get_plotlyjs

    figures = []
    if report["by_value_destroyed"]:
        figures.append(("chart-value", _bar_figure(
            report["by_value_destroyed"], "value_destroyed", "Value destroyed per touchpoint",
            "%{x:.1f}")))
    if report["by_failure_rate"]:
        figures.append(("chart-rate", _bar_figure(
            report["by_failure_rate"], "failure_rate", "Failure rate per touchpoint",
            "%{x:.1%}")))
    if report["by_drop_off_blame"]:
        figures.append(("chart-blame", _bar_figure(
            report["by_drop_off_blame"], "drop_off_blame", "Blame in drop-offs", "%{x:.2f}")))
    if report["final_scores"]["customers"]:
        figures.append(("chart-scores", _score_figure(report["final_scores"])))
    charts = {cid: fig.to_html(full_html=False, include_plotlyjs=False, div_id=cid,
                               config={"displaylogo": False, "responsive": True})
              for cid, fig in figures}

    t = report["totals"]
    esc = html.escape
    candidates = "".join(
        f"<li><b>{esc(c['touchpoint'])}</b> destroys {c['value_destroyed']:,.2f}"
        f" ({c['share']:.0%} of all value destroyed)</li>" for c in report["candidates"]
    ) or "<li>No moment destroyed value.</li>"
    sections = []
    for (key, heading, why), cid in zip(RANKINGS, ("value", "rate", "blame"), strict=True):
        sections.append(
            f'<section><h2>{esc(heading)}</h2><p class="why">{esc(why)}</p>'
            f'<div class="pair"><div class="tbl">{_html_table(report[key], "rank-" + cid)}</div>'
            f'<div class="chart">{charts.get("chart-" + cid, "")}</div></div></section>')
    vc = report["vicious_circles"]
    circle_items = "".join(f"<li>{esc(c['customer_id'])} ({esc(c['severity'] or 'open')})</li>"
                           for c in vc["customers"]) or "<li>none</li>"
    if vc["open"] > len(vc["customers"]):
        circle_items += f"<li>… and {vc['open'] - len(vc['customers']):,} more</li>"
    fs = report["final_scores"]
    stats = (f"min {fs['min']:,.2f} · median {fs['median']:,.2f} · mean {fs['mean']:,.2f}"
             f" · max {fs['max']:,.2f}") if fs["customers"] else "no customers"
    alerts = ", ".join(f"{esc(k)} {n:,}" for k, n in t["alerts_by_kind"].items()) or "none"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
h1 {{ margin-bottom: 4px; }} .why, .sub {{ color: #666; margin-top: 0; }}
table {{ border-collapse: collapse; font-size: 14px; counter-reset: rank; }}
th, td {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }}
th:nth-child(2), td:nth-child(2) {{ text-align: left; }}
tbody tr td:first-child::before {{ counter-increment: rank; content: counter(rank); }}
.pair {{ display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }}
.chart {{ flex: 1 1 420px; min-width: 380px; }}
.candidates {{ background: #fdecea; border-left: 4px solid #c0392b; padding: 8px 16px; }}
</style>
<script>{get_plotlyjs()}</script>
</head><body>
<h1>{esc(title)}</h1>
<p class="sub">{t['records']:,} records · {t['scored']:,} moments scored · {t['rejected']:,}
rejected · {t['customers']:,} customers · {t['touchpoints']:,} touchpoints · alerts: {alerts}</p>
<div class="candidates"><h2>Fewer are better: candidates to fix or remove</h2>
<ol id="candidates">{candidates}</ol></div>
{''.join(sections)}
<section><h2>Customers in a vicious circle at the end: {vc['open']:,}</h2>
<ul id="circles">{circle_items}</ul></section>
<section><h2>Final running scores</h2><p class="why">{stats};
{fs['negative']:,} below zero</p>{charts.get('chart-scores', '')}</section>
</body></html>
"""


# --- backtest (agents.domain.backtest) ---------------------------------------------------

GROUPS = (("only_new", "only new"), ("only_old", "only old"),
          ("changed_severity", "severity changed"), ("changed_lifecycle", "lifecycle changed"))
NEW_COLOUR, OLD_COLOUR = "#c0392b", "#2c3e50"


def _group_rows(rows: list[dict[str, Any]], key: str) -> list[list[str]]:
    return [[str(r[key]), *(f"{r[g]:,}" for g, _ in GROUPS)] for r in rows]


def render_backtest_table(diff: dict[str, Any]) -> str:
    """The backtest's difference for a terminal."""
    old, new = diff["rules"]["old"]["version"], diff["rules"]["new"]["version"]
    c = diff["counts"]
    out = [f"Backtest — rules {new} against {old}",
           f"alerts: {diff['alerts']['old']:,} under {old}, {diff['alerts']['new']:,} under"
           f" {new}; " + ", ".join(f"{label} {c[g]:,}" for g, label in GROUPS),
           f"pages (amber or red): {diff['pages']['old']:,} under {old},"
           f" {diff['pages']['new']:,} under {new}", ""]
    headers = [label for _, label in GROUPS]
    for key, title in (("kind", "By kind"), ("touchpoint", "By touchpoint")):
        rows = diff["by_" + key]
        out.append(title)
        out += _table([key, *headers], _group_rows(rows, key)) if rows else ["  none"]
        out.append("")
    cs = diff["circle_state"]
    out.append(f"Customers whose circle state differs at the end: {cs['customers_differing']:,}")
    for r in cs["customers"]:
        out.append(f"  {r['customer_id']}: {_circles(r['old'])} → {_circles(r['new'])}")
    out += ["", "Paging volume per day"]
    out += _table(["day", old, new], [[d["day"], f"{d['old']:,}", f"{d['new']:,}"]
                                      for d in diff["paging_per_day"]]) or ["  none"]
    return "\n".join(out) + "\n"


def _circles(circles: list[list[Any]]) -> str:
    return ", ".join(f"{k} #{n} {sev}" for k, n, sev in circles) or "none"


def _grouped_figure(rows: list[dict[str, Any]], key: str, title: str) -> Any:
    import plotly.graph_objects as go

    names = [str(r[key]) for r in rows][::-1]
    fig = go.Figure([go.Bar(x=[r[g] for r in rows][::-1], y=names, orientation="h",
                            name=label, marker_color=colour)
                     for (g, label), colour in zip(
                         GROUPS, (NEW_COLOUR, OLD_COLOUR, "#e67e22", "#8e44ad"), strict=True)])
    fig.update_layout(title=title, template="plotly_white", barmode="group",
                      height=120 + 60 * len(rows), margin={"l": 10, "r": 20, "t": 50, "b": 30})
    fig.update_yaxes(automargin=True)
    return fig


def _paging_figure(days: list[dict[str, Any]], old: str, new: str) -> Any:
    import plotly.graph_objects as go

    x = [d["day"] for d in days]
    fig = go.Figure([go.Bar(x=x, y=[d["old"] for d in days], name=old, marker_color=OLD_COLOUR),
                     go.Bar(x=x, y=[d["new"] for d in days], name=new, marker_color=NEW_COLOUR)])
    fig.update_layout(title="Paging volume per day (amber or red alerts)", barmode="group",
                      template="plotly_white", height=360,
                      margin={"l": 40, "r": 20, "t": 50, "b": 40})
    return fig


def _group_table(rows: list[dict[str, Any]], key: str, css_id: str) -> str:
    if not rows:
        return f'<p class="none" id="{css_id}">none</p>'
    esc = html.escape
    head = "".join(f"<th>{esc(label)}</th>" for _, label in GROUPS)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>"
                   for cells in _group_rows(rows, key))
    return (f'<table id="{css_id}"><thead><tr><th>{esc(key)}</th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>")


def render_backtest_html(diff: dict[str, Any]) -> str:
    """The backtest's difference as one self-contained page (inlined plotly.js)."""
    from plotly.offline import get_plotlyjs

    esc = html.escape
    old, new = diff["rules"]["old"]["version"], diff["rules"]["new"]["version"]
    opts = {"displaylogo": False, "responsive": True}
    charts = {}
    for key, title in (("kind", "Alerts that differ, by kind"),
                       ("touchpoint", "Alerts that differ, by touchpoint")):
        if diff["by_" + key]:
            charts[key] = _grouped_figure(diff["by_" + key], key, title).to_html(
                full_html=False, include_plotlyjs=False, div_id="chart-" + key, config=opts)
    if diff["paging_per_day"]:
        charts["paging"] = _paging_figure(diff["paging_per_day"], old, new).to_html(
            full_html=False, include_plotlyjs=False, div_id="chart-paging", config=opts)
    c = diff["counts"]
    counts = "".join(f'<li id="count-{g}"><b>{c[g]:,}</b> {esc(label)}</li>'
                     for g, label in GROUPS)
    cs = diff["circle_state"]
    customers = "".join(f"<li>{esc(r['customer_id'])}: {esc(_circles(r['old']))} → "
                        f"{esc(_circles(r['new']))}</li>"
                        for r in cs["customers"]) or "<li>none</li>"
    changed = {k: v for k, v in diff["rules"]["new"].items()
               if diff["rules"]["old"].get(k) != v and k != "version"}
    changes = "".join(f"<li><code>{esc(k)}</code>: {esc(str(diff['rules']['old'].get(k)))}"
                      f" → {esc(str(v))}</li>" for k, v in changed.items()) or "<li>none</li>"
    title = f"Backtest — rules {new} against {old}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; }}
h1 {{ margin-bottom: 4px; }} .sub {{ color: #666; margin-top: 0; }}
table {{ border-collapse: collapse; font-size: 14px; }}
th, td {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
.pair {{ display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }}
.chart {{ flex: 1 1 420px; min-width: 380px; }}
.counts {{ background: #fdecea; border-left: 4px solid {NEW_COLOUR}; padding: 8px 16px; }}
</style>
<script>{get_plotlyjs()}</script>
</head><body>
<h1>{esc(title)}</h1>
<p class="sub">{diff['alerts']['old']:,} alerts under {esc(old)} · {diff['alerts']['new']:,}
under {esc(new)} · pages {diff['pages']['old']:,} → {diff['pages']['new']:,}</p>
<div class="counts"><h2>What the new rules change</h2><ul id="counts">{counts}</ul>
<p>Changed tunables:</p><ul id="changes">{changes}</ul></div>
<section><h2>By kind</h2><div class="pair"><div class="tbl">
{_group_table(diff['by_kind'], 'kind', 'by-kind')}</div>
<div class="chart">{charts.get('kind', '')}</div></div></section>
<section><h2>By touchpoint</h2><div class="pair"><div class="tbl">
{_group_table(diff['by_touchpoint'], 'touchpoint', 'by-touchpoint')}</div>
<div class="chart">{charts.get('touchpoint', '')}</div></div></section>
<section><h2>Paging volume per day</h2>{charts.get('paging', '')}</section>
<section><h2>Customers whose circle state differs at the end: {cs['customers_differing']:,}</h2>
<ul id="circle-customers">{customers}</ul></section>
</body></html>
"""
