"""A backtest's difference: what two rule sets make of the same history, compared.

Pure: it takes the alerts and the customers' final circle states of two replays (the
old rules' and the new ones') and says which alerts only one of them raises, which they
both raise with another severity, which circles run another lifecycle, by kind and by
touchpoint, which customers end in another circle state, and how many pages each sends
per day. Alerts are matched on ``alert_id``: an id depends only on what caused the
alert, never on the rules, so the same moment alerted under both is one alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

PAGING = ("amber", "red")  # the severities that page someone (green: ends, resolutions)
SCHEMA = "mot.backtest/v1"


@dataclass(slots=True)
class Side:
    """One replay's alerts by id, and each circle's lifecycles in order."""

    alerts: dict[str, dict[str, Any]] = field(default_factory=dict)
    circles: dict[str, list[str]] = field(default_factory=dict)

    def add(self, alert: Mapping[str, Any]) -> None:
        compact = {"kind": alert["kind"], "severity": alert["severity"],
                   "touchpoint": alert.get("touchpoint", ""),
                   "day": str(alert["occurred_at"])[:10],
                   "rules_version": alert.get("rules_version")}
        self.alerts[alert["alert_id"]] = compact
        if "circle_id" in alert:
            self.circles.setdefault(alert["circle_id"], []).append(alert["lifecycle"])
            compact["circle_id"] = alert["circle_id"]


def _count(rows: Iterable[dict[str, Any]], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r[key]] = out.get(r[key], 0) + 1
    return dict(sorted(out.items()))


def _breakdown(groups: Mapping[str, list[dict[str, Any]]], key: str) -> list[dict[str, Any]]:
    """Per value of ``key``: the count of every group, most affected first."""
    counts = {g: _count(rows, key) for g, rows in groups.items()}
    names = sorted({n for c in counts.values() for n in c})
    table = [{key: n, **{g: counts[g].get(n, 0) for g in groups}} for n in names]
    return sorted(table, key=lambda r: (-sum(r[g] for g in groups), r[key]))


def compare(old: Side, new: Side, old_circles: Mapping[str, list[list[Any]]],
            new_circles: Mapping[str, list[list[Any]]], old_rules: dict[str, Any],
            new_rules: dict[str, Any], top: int = 20) -> dict[str, Any]:
    """The difference document (``mot backtest --json``); ``*_circles``: customer → its open
    circles at the end ([kind, circle number, severity], sorted); ``*_rules``: the two
    rules documents, shown beside the difference."""
    only_new = [new.alerts[i] for i in new.alerts if i not in old.alerts]
    only_old = [old.alerts[i] for i in old.alerts if i not in new.alerts]
    changed_severity = [
        {**new.alerts[i], "old_severity": old.alerts[i]["severity"]}
        for i in new.alerts if i in old.alerts
        and old.alerts[i]["severity"] != new.alerts[i]["severity"]]
    changed_lifecycle = sorted(
        cid for cid in new.circles.keys() & old.circles.keys()
        if new.circles[cid] != old.circles[cid])
    lifecycle_rows = [next(a for a in new.alerts.values() if a.get("circle_id") == cid)
                      for cid in changed_lifecycle]
    groups = {"only_new": only_new, "only_old": only_old,
              "changed_severity": changed_severity, "changed_lifecycle": lifecycle_rows}
    customers = sorted(c for c in old_circles.keys() | new_circles.keys()
                       if old_circles.get(c, []) != new_circles.get(c, []))
    days = sorted({a["day"] for a in (*old.alerts.values(), *new.alerts.values())})
    old_pages = _count((a for a in old.alerts.values() if a["severity"] in PAGING), "day")
    new_pages = _count((a for a in new.alerts.values() if a["severity"] in PAGING), "day")
    return {
        "schema": SCHEMA,
        "rules": {"old": old_rules, "new": new_rules},
        "alerts": {"old": len(old.alerts), "new": len(new.alerts)},
        "counts": {g: len(rows) for g, rows in groups.items()},
        "by_kind": _breakdown(groups, "kind"),
        "by_touchpoint": _breakdown(groups, "touchpoint")[:top],
        "circle_state": {
            "customers_differing": len(customers),
            "customers": [{"customer_id": c, "old": old_circles.get(c, []),
                           "new": new_circles.get(c, [])} for c in customers[:top]],
        },
        "paging_per_day": [{"day": d, "old": old_pages.get(d, 0), "new": new_pages.get(d, 0)}
                           for d in days],
        "pages": {"old": sum(old_pages.values()), "new": sum(new_pages.values())},
    }
