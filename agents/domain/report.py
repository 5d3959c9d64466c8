"""The moments-of-truth report: which touchpoints destroy the most value.

It aggregates what :func:`agents.domain.moment_processor.process_record` returned for
each record (never a second computation of the model): the contribution of each scored
moment to its customer's running score, failures, the outputs it emitted (circle and
drop-off alerts when the processor emits them) and, at the end, the customers' states.
Memory is O(touchpoints + customers with a circle open).

The seeds' advice is "fewer are better": the moments that destroy the most value are
the candidates to fix or remove.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from agents.domain.circles import VICIOUS
from agents.domain.customer_state import CustomerState
from agents.domain.drop_off import KIND as DROP_OFF
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import Output, Processed
from agents.domain.running_score import contribution

SCHEMA = "mot.report/v1"
CLOSED = "resolved"  # the vicious-circle lifecycle event that ends a circle
# Edges of the final-score histogram: one failed moment at q = −1 costs λ = 12 by default.
SCORE_EDGES = (-36.0, -24.0, -12.0, -6.0, 0.0, 3.0, 6.0, 12.0)


@dataclass(slots=True)
class TouchpointTally:
    moments: int = 0
    failures: int = 0
    value_destroyed: float = 0.0  # −Σ of the negative contributions (≥ 0)
    value_created: float = 0.0  # Σ of the positive contributions
    drop_off_blame: float = 0.0  # Σ of its shares of the blame in drop-off alerts
    culprit_of: int = 0  # drop-off alerts naming it the most likely culprit


@dataclass
class ReportBuilder:
    """Feed it every :class:`Processed` in processing order, then call :meth:`finish`."""

    cfg: ModelConfig
    touchpoints: dict[str, TouchpointTally] = field(default_factory=dict)
    records: int = 0
    scored: int = 0
    duplicates: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    alerts: dict[str, int] = field(default_factory=dict)
    drop_offs: int = 0
    open_circles: dict[str, str] = field(default_factory=dict)  # customer → severity

    def add(self, done: Processed) -> None:
        self.records += 1
        if done.rejected is not None:
            reason = done.rejected[0]
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
            return
        result, event = done.result, done.event
        if result is None or event is None:
            return
        if result.duplicate:
            self.duplicates += 1
        else:
            self.scored += 1
            tally = self._tally(event.touchpoint)
            tally.moments += 1
            tally.failures += result.failed
            delta = contribution(result.quality.q, event.weight_or_default, self.cfg.score)
            if delta < 0:
                tally.value_destroyed -= delta
            else:
                tally.value_created += delta
        for out in done.outputs:
            self.alerts[out.kind] = self.alerts.get(out.kind, 0) + 1
            if out.kind == VICIOUS:
                self._circle(out.key, out.value)
            elif out.kind == DROP_OFF and not result.duplicate:
                self._drop_off(out.value)

    def add_alerts(self, outputs: Iterable[Output]) -> None:
        """Alerts sent without an input record of their own (a silence check's drop-offs,
        the touchpoint andon's transitions): counted, and a drop-off's blame taken."""
        for out in outputs:
            self.alerts[out.kind] = self.alerts.get(out.kind, 0) + 1
            if out.kind == DROP_OFF:
                self._drop_off(out.value)

    def merge(self, other: ReportBuilder) -> None:
        """Add what ``other`` saw (another share of the customers) to this one."""
        for name, t in other.touchpoints.items():
            mine = self._tally(name)
            mine.moments += t.moments
            mine.failures += t.failures
            mine.value_destroyed += t.value_destroyed
            mine.value_created += t.value_created
            mine.drop_off_blame += t.drop_off_blame
            mine.culprit_of += t.culprit_of
        self.records += other.records
        self.scored += other.scored
        self.duplicates += other.duplicates
        for reason, n in other.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + n
        for kind, n in other.alerts.items():
            self.alerts[kind] = self.alerts.get(kind, 0) + n
        self.drop_offs += other.drop_offs
        self.open_circles.update(other.open_circles)

    def _tally(self, touchpoint: str) -> TouchpointTally:
        tally = self.touchpoints.get(touchpoint)
        if tally is None:
            tally = self.touchpoints[touchpoint] = TouchpointTally()
        return tally

    def _circle(self, customer_id: str, alert: Mapping[str, Any]) -> None:
        """Circle alerts are lifecycle events; the customer's last one says if it is open."""
        if alert.get("lifecycle") == CLOSED:
            self.open_circles.pop(customer_id, None)
        else:
            self.open_circles[customer_id] = str(alert.get("severity", ""))

    def _drop_off(self, alert: Mapping[str, Any]) -> None:
        """Blame as the drop-off alert states it (``blame_by_touchpoint``, ``culprit``)."""
        self.drop_offs += 1
        for touchpoint, share in (alert.get("blame_by_touchpoint") or {}).items():
            self._tally(touchpoint).drop_off_blame += float(share)
        culprit = alert.get("culprit") or {}
        if culprit.get("touchpoint"):
            self._tally(culprit["touchpoint"]).culprit_of += 1

    def finish(self, final_states: Mapping[str, CustomerState], top: int = 10
               ) -> dict[str, Any]:
        """The report as a JSON-ready dict; ``final_states`` is customer → state."""
        rows = [_row(name, t) for name, t in self.touchpoints.items()]
        destroyed_total = sum(r["value_destroyed"] for r in rows)
        by_value = sorted(rows, key=lambda r: (-r["value_destroyed"], r["touchpoint"]))
        by_rate = sorted(rows, key=lambda r: (-r["failure_rate"], -r["moments"],
                                              r["touchpoint"]))
        blamed = [r for r in rows if r["drop_off_blame"] > 0 or r["culprit_of"] > 0]
        by_blame = sorted(blamed, key=lambda r: (-r["drop_off_blame"], -r["culprit_of"],
                                                 r["touchpoint"]))
        candidates = [
            {"touchpoint": r["touchpoint"], "value_destroyed": r["value_destroyed"],
             "share": round(r["value_destroyed"] / destroyed_total, 4)}
            for r in by_value[:3] if r["value_destroyed"] > 0
        ]
        scores = [float(st.score) for st in final_states.values()]
        circles = sorted(self.open_circles.items())
        return {
            "schema": SCHEMA,
            "totals": {
                "records": self.records, "scored": self.scored,
                "duplicates": self.duplicates, "rejected": sum(self.rejected.values()),
                "rejected_by_reason": dict(sorted(self.rejected.items())),
                "alerts_by_kind": dict(sorted(self.alerts.items())),
                "customers": len(scores), "touchpoints": len(rows),
                "value_destroyed": round(destroyed_total, 6),
                "drop_offs": self.drop_offs,
            },
            "candidates": candidates,
            "by_value_destroyed": by_value[:top],
            "by_failure_rate": by_rate[:top],
            "by_drop_off_blame": by_blame[:top],
            "vicious_circles": {
                "open": len(circles),
                "customers": [{"customer_id": c, "severity": s} for c, s in circles[:top]],
            },
            "final_scores": score_distribution(scores),
        }


def _row(name: str, t: TouchpointTally) -> dict[str, Any]:
    return {
        "touchpoint": name, "moments": t.moments, "failures": t.failures,
        "failure_rate": round(t.failures / t.moments, 6) if t.moments else 0.0,
        "value_destroyed": round(t.value_destroyed, 6),
        "value_created": round(t.value_created, 6),
        "drop_off_blame": round(t.drop_off_blame, 6), "culprit_of": t.culprit_of,
    }


def score_distribution(scores: Iterable[float], edges: tuple[float, ...] = SCORE_EDGES
                       ) -> dict[str, Any]:
    """Histogram of final scores over fixed edges, with summary statistics."""
    values = sorted(scores)
    labels = [f"< {edges[0]:g}"] + [f"[{a:g}, {b:g})" for a, b in pairwise(edges)]
    labels.append(f">= {edges[-1]:g}")
    counts = [0] * (len(edges) + 1)
    for v in values:
        i = 0
        while i < len(edges) and v >= edges[i]:
            i += 1
        counts[i] += 1
    out: dict[str, Any] = {
        "customers": len(values),
        "bins": [{"range": lab, "customers": c} for lab, c in zip(labels, counts,
                                                                    strict=True)],
        "negative": sum(1 for v in values if v < 0),
    }
    if values:
        out.update(min=round(values[0], 6), median=round(statistics.median(values), 6),
                   mean=round(statistics.fmean(values), 6), max=round(values[-1], 6))
    return out
