"""The repo's Prometheus config, rules and Grafana dashboard against a real worker.

A real Prometheus (Debian's ``prometheus``, installed by deploy/local/system-deps.sh)
scrapes a real worker on the real broker while synthetic traffic flows; every query of
every dashboard panel is then evaluated through Prometheus's HTTP API and must parse and
return data, and every rule of rules.yml must evaluate without error.

Before the synthetic traffic, a few planted stories make the circles, journeys and
andon panels show something definite: a customer whose vicious circle opens and is
resolved, one who stays in it, a journey that is abandoned after a failed moment and one
that completes, and a touchpoint whose failure rate jumps to ten times its baseline.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiokafka import AIOKafkaProducer

from streams.offline.traffic import TrafficGenerator
from tests.harness import (
    REPO,
    WorkerProcess,
    event_record,
    free_port,
    metric_value,
    produce,
    service_env,
)

pytestmark = pytest.mark.kafka

PROMETHEUS = shutil.which("prometheus")
DEPLOY = REPO / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "mot.json"
# Grafana's own variables, as Grafana would fill them in for a 1 s scrape interval
GRAFANA_VARIABLES = {"$__rate_interval": "15s", "$__range": "2m", "$instance": ".*"}

needs_prometheus = pytest.mark.requires_tool("prometheus")  # fails under CI=true if missing
ANDON_TOUCHPOINT = "billing.invoice"  # not one of the synthetic traffic's touchpoints


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel, rows' nested panels included."""
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for p in panels:
            for t in p.get("targets", []):
                out.append((p["title"], t["expr"]))
            walk(p.get("panels", []))

    walk(dashboard["panels"])
    return out


def grafana_to_promql(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    assert "$" not in expr, f"a Grafana variable the test does not know: {expr}"
    return expr


def render_config(directory: Path, target: str) -> Path:
    """The repo's prometheus.yml with the test worker as the only target and 1 s intervals;
    its rule files are copied next to it under the same relative names."""
    source = DEPLOY / "prometheus" / "prometheus.yml"
    config = yaml.safe_load(source.read_text())
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "mot"]
    job["static_configs"] = [{"targets": [target]}]
    for rule_file in config["rule_files"]:
        (directory / rule_file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source.parent / rule_file, directory / rule_file)
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class PrometheusProcess:
    """``prometheus`` on a free loopback port with its own storage; stopped by :meth:`stop`."""

    config: Path
    storage: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> PrometheusProcess:
        assert PROMETHEUS is not None
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [PROMETHEUS, f"--config.file={self.config}",
                 f"--storage.tsdb.path={self.storage}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"prometheus not ready:\n{self.log_path.read_text()[-3000:]}")

    def api(self, path: str, **params: str) -> Any:
        url = f"{self.url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:  # a bad query answers 400 with the error in JSON
            return json.loads(e.read())

    def query(self, expr: str) -> Any:
        return self.api("query", query=expr)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def has_data(answer: Any) -> bool:
    """A successful instant query with at least one finite sample."""
    if answer.get("status") != "success":
        return False
    result = answer["data"]["result"]
    if answer["data"]["resultType"] == "scalar":
        result = [{"value": result}]
    return any(math.isfinite(float(s["value"][1])) for s in result)


async def traffic(bootstrap: str, topic: str, stop: asyncio.Event, rate: float = 40.0) -> int:
    """Synthetic events at ``rate`` per second, one undecodable record in every 20."""
    gen = TrafficGenerator(seed=11, customers=120)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    sent = 0
    try:
        while not stop.is_set():
            event = gen.next_event(time.time())
            key = event["customer_id"].encode()
            value = orjson.dumps(event) if sent % 20 else b"{not json"
            await producer.send(topic, value, key=key)
            sent += 1
            await asyncio.sleep(1 / rate)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def event(event_id: str, customer: str, at: float, touchpoint: str,
          **fields: Any) -> dict[str, Any]:
    return {"event_id": event_id, "customer_id": customer,
            "occurred_at": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
            "touchpoint": touchpoint, **fields}


def stories(now: float) -> list[dict[str, Any]]:
    """Events in the recent past (event time), each customer's in order."""
    h = 3600.0
    out = []
    # a vicious circle opens (3 failed moments within 72 h, score below 0) and is resolved
    # 3 h later by a moment that outweighs them; another customer stays in one
    for cid in ("circle-resolved", "circle-open"):
        out += [event(f"{cid}-f{i}", cid, now - (8 - i) * h, "support.phone",
                      outcome="failure") for i in range(3)]
    out.append(event("circle-resolved-d", "circle-resolved", now - 3 * h, "support.phone",
                     outcome="delight", weight=50))
    # a journey abandoned after a failed moment upstream, and one that completes
    j = [("web.search", {"outcome": "success"}), ("web.product-page", {"csat": 1}),
         ("checkout.cart", {"outcome": "success"}), ("checkout.payment", {"outcome": "abandoned"})]
    out += [event(f"journey-a{i}", "journey-1", now - 1800 + 60 * i, tp, journey_id="j-1",
                  journey="purchase", **signal) for i, (tp, signal) in enumerate(j)]
    out += [event("journey-b0", "journey-1", now - 1200, "web.search", journey_id="j-2",
                  journey="purchase", outcome="success"),
            event("journey-b1", "journey-1", now - 1140, "checkout.payment", journey_id="j-2",
                  journey="purchase", outcome="success", attributes={"journey_end": True})]
    # the andon judges once 200 moments have left its 5-minute window: 25 minutes of
    # moments one in 20 failing, then 5 minutes with every other one failing (red)
    start = now - 3600
    for i in range(360):
        failed = i % 2 == 0 if i >= 300 else i % 20 == 0
        out.append(event(f"andon-{i}", "andon-1", start + 5 * i, ANDON_TOUCHPOINT,
                         outcome="failure" if failed else "success"))
    return out


async def eventually(prometheus: PrometheusProcess, expr: str,
                     check: Callable[[dict[str, float]], bool], timeout: float = 60) -> None:
    """Wait until ``check`` holds for the answer to ``expr`` (first label value -> value)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, float] = {}
    while time.monotonic() < deadline:
        answer = prometheus.query(expr)
        assert answer.get("status") == "success", (expr, answer)
        seen = {next(iter(s["metric"].values()), ""): float(s["value"][1])
                for s in answer["data"]["result"]}
        if check(seen):
            return
        await asyncio.sleep(1)
    raise AssertionError(f"{expr} -> {seen}")


@pytest.fixture
def worker(kafka: str, tmp_path: Path) -> Iterator[WorkerProcess]:
    env = service_env(kafka, tmp_path / "data", MOT_CONSUMER_LAG_INTERVAL_S="1")
    w = WorkerProcess(env, tmp_path / "worker.log")
    try:
        yield w.start()
    finally:
        w.stop()


@pytest.fixture
def prometheus(worker: WorkerProcess, tmp_path: Path) -> Iterator[PrometheusProcess]:
    config_dir = tmp_path / "prometheus"
    config_dir.mkdir()
    config = render_config(config_dir, f"127.0.0.1:{worker.env['MOT_WEB_PORT']}")
    p = PrometheusProcess(config, tmp_path / "tsdb", tmp_path / "prometheus.log")
    try:
        yield p.start()
    finally:
        p.stop()


@pytest.fixture
async def flowing(kafka: str, worker: WorkerProcess,
                  prometheus: PrometheusProcess) -> AsyncIterator[None]:
    # once Prometheus has scraped the worker, so that what the stories add to a counter
    # or histogram is an increase it sees
    await eventually(prometheus, "sum(mot_vicious_circle_duration_seconds_count)",
                     lambda seen: seen == {"": 0.0}, timeout=30)
    await produce(kafka, worker.env["MOT_TOPIC_EVENTS"],
                  [event_record(e) for e in stories(time.time())])
    stop = asyncio.Event()
    task = asyncio.create_task(traffic(kafka, worker.env["MOT_TOPIC_EVENTS"], stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


@needs_prometheus
async def test_every_dashboard_query_returns_data_from_a_real_prometheus(
    worker: WorkerProcess, prometheus: PrometheusProcess, flowing: None
) -> None:
    queries = dashboard_queries(json.loads(DASHBOARD.read_text()))
    assert len(queries) >= 20
    pending = {(title, grafana_to_promql(expr)) for title, expr in queries}
    answers: dict[tuple[str, str], Any] = {}
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        for item in sorted(pending):
            answers[item] = prometheus.query(item[1])
            assert answers[item].get("status") == "success", (item, answers[item])
            if has_data(answers[item]):
                pending.discard(item)
        await asyncio.sleep(2)
    assert not pending, "panel queries without data:\n" + "\n".join(
        f"{title}: {expr} -> {answers[(title, expr)]}" for title, expr in sorted(pending))

    # the $instance variable's values come from up{job="mot"}: the worker is one of them
    # (query.query is what Grafana runs; "definition" is only the editor's display text)
    variable = json.loads(DASHBOARD.read_text())["templating"]["list"][1]
    selector = re.fullmatch(r"label_values\((.+), instance\)", variable["query"]["query"])
    assert selector is not None
    series = prometheus.api("series", **{"match[]": selector.group(1)})["data"]
    assert {s["instance"] for s in series} == {f"127.0.0.1:{worker.env['MOT_WEB_PORT']}"}

    # what Prometheus saw is what the worker exports
    metrics = worker.metrics()
    assert metric_value(metrics, "mot_events_dead_lettered_total", 'reason="invalid_json"') > 0
    topic = worker.env["MOT_TOPIC_EVENTS"]
    lag = prometheus.query(f'count(mot_consumer_lag_messages{{topic="{topic}"}})')
    assert float(lag["data"]["result"][0]["value"][1]) == 2, "a series per input partition"

    # what the new panels show for the planted stories
    panels: dict[str, str] = {}  # a panel's first query
    for title, expr in queries:
        panels.setdefault(title, grafana_to_promql(expr))
    await eventually(prometheus, panels["Andon board: status by touchpoint"],
                     lambda seen: seen.get(ANDON_TOUCHPOINT) == 2  # red
                     and seen.get("web.search") == 0)  # green: too few moments to judge
    assert has_data(prometheus.query(f'mot_touchpoint_baseline_failure_rate'
                                     f'{{touchpoint="{ANDON_TOUCHPOINT}"}} < 0.1'))
    await eventually(prometheus, panels["Customers in a vicious circle"],
                     lambda seen: seen.get("", 0) >= 1)
    await eventually(prometheus,
                     'sum by (lifecycle) (mot_circle_transitions_total{kind="vicious-circle"})',
                     lambda seen: seen.get("opened", 0) >= 2 and seen.get("resolved", 0) >= 1)
    # resolved 3 h after it opened: p50 in the histogram's 1 h–6 h bucket
    await eventually(prometheus, panels["Vicious circles: opening to resolution (selected range)"],
                     lambda seen: 3600 < seen.get("", 0) <= 6 * 3600)
    await eventually(prometheus, "sum by (status) (mot_journeys_total)",
                     lambda seen: seen.get("completed", 0) >= 1 and seen.get("dropped", 0) >= 1)
    await eventually(prometheus, 'sum by (touchpoint) '
                     '(mot_dropoff_blame_total{touchpoint="web.product-page"})',
                     lambda seen: seen.get("web.product-page", 0) >= 1)


@needs_prometheus
async def test_every_rule_evaluates_on_real_scrapes_and_nothing_critical_holds(
    worker: WorkerProcess, prometheus: PrometheusProcess, flowing: None
) -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    records = [r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r]
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    deadline = time.monotonic() + 120
    missing = set(records)
    while missing and time.monotonic() < deadline:
        missing = {r for r in missing if not has_data(prometheus.query(r))}
        await asyncio.sleep(2)
    assert not missing, f"recording rules without data: {sorted(missing)}"

    groups = prometheus.api("rules")["data"]["groups"]
    loaded = {r.get("name"): r for g in groups for r in g["rules"]}
    assert set(loaded) == set(records) | alerts
    broken = {n: r.get("lastError") for n, r in loaded.items() if r["health"] != "ok"}
    assert not broken, broken

    targets = prometheus.api("targets")["data"]["activeTargets"]
    assert [t["health"] for t in targets] == ["up"]

    # the red touchpoint's alert is pending (it fires once red for 5 minutes)
    await eventually(prometheus, 'ALERTS{alertname="MotTouchpointRed", alertstate="pending"}',
                     lambda seen: bool(seen))
    pending = prometheus.query('ALERTS{alertname="MotTouchpointRed"}')["data"]["result"]
    assert [a["metric"]["touchpoint"] for a in pending] == [ANDON_TOUCHPOINT]

    # Nothing critical holds on a healthy worker but the planted red touchpoint. Most
    # critical alerts wait minutes (`for:`) before they fire, longer than this test runs,
    # so their firing state would prove nothing: each one's expression is evaluated now
    # and must select no series (promtool's rule tests cover the `for:` windows).
    critical = {r["alert"]: r["expr"] for g in rules["groups"] for r in g["rules"]
                if "alert" in r and r["labels"]["severity"] == "critical"}
    assert set(critical) == {"MotWorkerDown", "MotNoWorkerUp", "MotInternalErrors",
                             "MotConsumerStalled", "MotTouchpointRed"}
    holding: dict[str, list[dict[str, str]]] = {}
    for name, expr in sorted(critical.items()):
        answer = prometheus.query(expr)
        assert answer.get("status") == "success", (name, answer)
        holding[name] = [s["metric"] for s in answer["data"]["result"]]
    assert {n: [m.get("touchpoint") for m in ms] for n, ms in holding.items()} == {
        "MotWorkerDown": [], "MotNoWorkerUp": [], "MotInternalErrors": [],
        "MotConsumerStalled": [], "MotTouchpointRed": [ANDON_TOUCHPOINT]}, holding
    states = prometheus.query('ALERTS{severity="critical"}')["data"]["result"]
    assert {(a["metric"]["alertname"], a["metric"]["alertstate"]) for a in states} == {
        ("MotTouchpointRed", "pending")}
