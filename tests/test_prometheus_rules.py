"""deploy/prometheus: promtool accepts the config and the rules, the rules' unit tests pass,
every alert has a case where it fires and one where it does not, and the rules only use
metrics the worker exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from streams import metrics
from tests.harness import REPO

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules.yml"
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.requires_tool("promtool")  # fails under CI=true if missing


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *map(str, args)], cwd=PROMETHEUS_DIR, capture_output=True,
                          text=True, timeout=120)


def collector_gauge_names() -> set[str]:
    """Gauges of the collectors read at scrape time (the touchpoint andon's, in
    agents/touchpoints.py: importing it would build the Faust app, so they are read from
    the source)."""
    names: set[str] = set()
    for path in sorted((REPO / "agents").rglob("*.py")):
        names |= set(re.findall(r'GaugeMetricFamily\(\s*"(mot_[a-z_]+)"', path.read_text()))
    return names


def exported_series_names() -> set[str]:
    """Every series name the worker's own metrics produce (counters end in _total,
    histograms in _bucket/_sum/_count), the scrape-time collectors' gauges included."""
    names: set[str] = collector_gauge_names()
    assert "mot_touchpoint_status" in names
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase | metrics.LoopHistogram):
            continue
        for family in value.describe():
            if family.type == "counter":
                names.add(family.name + "_total")
            elif family.type == "histogram":
                names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
            else:
                names.add(family.name)
    return names


def rule_list() -> list[dict]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


@needs_promtool
def test_promtool_accepts_the_config_and_its_rule_files() -> None:
    out = promtool("check", "config", "prometheus.yml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 rule files found" in out.stdout


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    out = promtool("check", "rules", RULES)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rule_list())} rules found" in out.stdout


@needs_promtool
def test_the_rules_unit_tests_pass() -> None:
    assert RULE_TESTS
    out = promtool("test", "rules", *RULE_TESTS)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_firing_and_a_non_firing_case() -> None:
    alerts = {r["alert"] for r in rule_list() if "alert" in r}
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        spec = yaml.safe_load(path.read_text())
        assert spec["rule_files"] == ["../rules.yml"], path
        for case in spec["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert alerts
    assert firing == alerts, f"without a firing case: {sorted(alerts - firing)}"
    assert quiet == alerts, f"without a non-firing case: {sorted(alerts - quiet)}"


def test_rules_use_only_metrics_the_worker_exports() -> None:
    recorded = {r["record"] for r in rule_list() if "record" in r}
    known = exported_series_names() | recorded | {"up"}
    assert "mot_consumer_lag_messages" in known
    for rule in rule_list():
        used = set(re.findall(r"\b(mot_[a-z_]+|up)\b(?=\s*[{\[)])", rule["expr"]))
        used |= set(re.findall(r"\b[a-z_]+:mot_[a-z_]+:[a-z0-9_]+\b", rule["expr"]))
        assert used, rule
        assert used <= known, (rule.get("alert") or rule.get("record"), used - known)
