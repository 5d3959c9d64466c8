"""The deployment artefacts, checked without Docker or a cluster: Docker Compose, the
Dockerfile, the Kubernetes manifests and the Grafana dashboard parse, and the names, ports
and topics they use are the ones the code reads."""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import fields, replace
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

import pytest
import yaml

import streams.cli
from streams.settings import Settings, SettingsError
from tests.harness import REPO
from tests.test_observability_kafka import dashboard_queries
from tests.test_prometheus_rules import exported_series_names

DEPLOY = REPO / "deploy"
SETTING_NAMES = {"MOT_" + f.name.upper() for f in fields(Settings)}
DEFAULTS = Settings()
TOPIC_VARIABLES = {"MOT_" + f.name.upper(): getattr(DEFAULTS, f.name) for f in fields(Settings)
                   if f.name.startswith("topic_")}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


TOKEN_FILE_VARIABLES = ("MOT_WEB_TOKEN_FILE", "MOT_METRICS_TOKEN_FILE")


def check_service_env(env: dict[str, str]) -> Settings:
    """MOT_* names are settings, the values are ones the worker accepts, topics are the
    defaults the rest of the deployment (and the docs) assume. Token files are the
    deployment's mount paths (checked against the mounts elsewhere), so a file with a
    token stands in for them here; the returned settings keep the deployment's paths."""
    mot = {k: str(v) for k, v in env.items() if k.startswith("MOT_")}
    assert set(mot) <= SETTING_NAMES, f"not settings: {sorted(set(mot) - SETTING_NAMES)}"
    for name, default in TOPIC_VARIABLES.items():
        assert mot.get(name, default) == default, name
    with tempfile.TemporaryDirectory() as tmp:
        stand_in = Path(tmp) / "token"
        stand_in.write_text("a-token\n")
        checked = Settings.from_env({k: str(stand_in) if k in TOKEN_FILE_VARIABLES else v
                                     for k, v in mot.items()})
    return replace(checked, **{k.removeprefix("MOT_").lower(): v for k, v in mot.items()
                               if k in TOKEN_FILE_VARIABLES})


# --- Dockerfile -------------------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the final stage, continuation lines joined."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    parsed = [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]
    last_from = max(i for i, (ins, _) in enumerate(parsed) if ins == "FROM")
    return parsed[last_from:]


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for ins, args in dockerfile():
        if ins == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(args))
    return env


def test_the_image_is_slim_non_root_and_health_checked() -> None:
    stage = dockerfile()
    assert re.fullmatch(r"python:3\.1[1-9]-slim", stage[0][1])
    users = [args for ins, args in stage if ins == "USER"]
    assert users and users[-1] not in ("root", "0")
    uid = re.search(r"useradd .*--uid (\d+) (\w+)", (REPO / "Dockerfile").read_text())
    assert uid is not None and users[-1] == uid.group(2)
    (health,) = [args for ins, args in stage if ins == "HEALTHCHECK"]
    assert "/health" in health and "MOT_WEB_PORT" in health
    env = docker_env()
    with pytest.raises(SettingsError, match="set MOT_WEB_TOKEN_FILE"):
        check_service_env(env)  # bound beyond loopback: the image alone refuses to start
    check_service_env({**env, "MOT_WEB_TOKEN_FILE": "/run/secrets/mot-web-token"})
    (expose,) = [args for ins, args in stage if ins == "EXPOSE"]
    assert expose == env["MOT_WEB_PORT"] == str(DEFAULTS.web_port)
    assert env["MOT_WEB_BIND"] == "0.0.0.0"
    (volume,) = [json.loads(args) for ins, args in stage if ins == "VOLUME"]
    assert volume == [env["MOT_DATA_DIR"]]


def test_the_entry_point_is_the_mot_console_script_running_a_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stage = dockerfile()
    (entry,) = [json.loads(args) for ins, args in stage if ins == "ENTRYPOINT"]
    (cmd,) = [json.loads(args) for ins, args in stage if ins == "CMD"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    target = project["project"]["scripts"][entry[0]]
    module, _, func = target.partition(":")
    assert module.split(".")[0] in project["tool"]["setuptools"]["packages"]
    main = getattr(importlib.import_module(module), func)
    assert main is streams.cli.main

    started: list[bool] = []
    worker = importlib.import_module("streams.worker")
    monkeypatch.setattr(worker, "main", lambda: started.append(True))
    assert main(cmd) == 0 and started == [True], "the default command starts a worker"


def test_the_build_context_keeps_what_the_dockerfile_copies() -> None:
    ignored = {ln.strip() for ln in (REPO / ".dockerignore").read_text().splitlines()
               if ln.strip() and not ln.startswith("#")}
    copies = [ln.split()[1:-1] for ln in (REPO / "Dockerfile").read_text().splitlines()
              if ln.startswith("COPY ") and "--from" not in ln]
    copied = {source.rstrip("/") for sources in copies for source in sources}
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = {p.split(".")[0] for p in project["tool"]["setuptools"]["packages"]}
    assert packages | {"pyproject.toml", project["project"]["readme"]} <= copied, \
        "the image must get every package the wheel is built from"
    for sources in copies:
        for source in sources:
            assert (REPO / source).exists(), source
            assert source.rstrip("/") not in ignored, f"{source} is left out of the context"


# --- Docker Compose ---------------------------------------------------------------------

def compose() -> dict[str, Any]:
    return load_yaml(DEPLOY / "docker-compose.yml")


def repo_services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in spec["services"].items() if s.get("build")}


def workers(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in repo_services(spec).items()
            if s.get("command", ["worker"]) == ["worker"]}


def bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path → host path (relative to deploy/) of the service's bind mounts."""
    out = {}
    for v in service.get("volumes", []):
        host, container = v.split(":")[:2]
        if host.startswith("."):
            out[container] = host
    return out


def test_compose_runs_kraft_kafka_of_the_repos_broker_version() -> None:
    kafka = compose()["services"]["kafka"]
    pom = ET.parse(DEPLOY / "kafka" / "pom.xml").getroot()
    version = pom.find("{*}properties/{*}kafka.version")
    assert version is not None
    assert kafka["image"] == f"apache/kafka:{version.text}"
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in k for k in env)
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_compose_services_read_settings_the_code_has() -> None:
    spec = compose()
    assert len(workers(spec)) >= 1
    for name, service in repo_services(spec).items():
        s = check_service_env(service["environment"])
        assert s.kafka_bootstrap_servers == "kafka:9092", name
        for dep in service.get("depends_on", {}):
            assert dep in spec["services"], (name, dep)
    for name, service in workers(spec).items():
        s = check_service_env(service["environment"])
        assert s.web_bind == "0.0.0.0"
        assert s.web_host == service["hostname"] == name, "other workers reach it by name"
        published = [p.rsplit(":", 1)[1] for p in service["ports"]]
        assert published == [str(s.web_port)], name
        data = [v.split(":")[1] for v in service["volumes"]]
        assert data == [docker_env()["MOT_DATA_DIR"]], "a volume for the RocksDB state"


def test_compose_traffic_runs_a_command_the_cli_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    (traffic,) = [s for s in repo_services(compose()).values()
                  if s.get("command", ["worker"])[0] == "generate"]
    assert traffic["healthcheck"] == {"disable": True}
    calls: list[tuple[Any, ...]] = []

    async def fake_generate(s: Settings, *args: Any) -> int:
        calls.append((s.kafka_bootstrap_servers, *args))
        return 0

    monkeypatch.setattr(streams.cli, "generate", fake_generate)
    for k, v in traffic["environment"].items():
        monkeypatch.setenv(k, v)
    assert streams.cli.main(traffic["command"]) == 0
    assert calls and calls[0][:2] == ("kafka:9092", 20.0)


def test_compose_prometheus_scrapes_every_worker_with_the_rules() -> None:
    spec = compose()
    prom = spec["services"]["prometheus"]
    mounts = bind_mounts(prom)
    for host in mounts.values():
        assert (DEPLOY / host).exists(), host
    config_path = next(a.split("=", 1)[1] for a in prom["command"]
                       if a.startswith("--config.file="))
    config = load_yaml(DEPLOY / mounts[config_path])
    for rule_file in config["rule_files"]:
        inside = str(PurePosixPath(config_path).parent / rule_file)
        assert inside in mounts, f"{rule_file} is not mounted next to the config"
        assert (DEPLOY / mounts[inside]).resolve() == (DEPLOY / "prometheus" / rule_file).resolve()
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "mot"]
    assert job["metrics_path"] == "/metrics"
    targets = {t for sc in job["static_configs"] for t in sc["targets"]}
    expected = {f"{n}:{check_service_env(s['environment']).web_port}"
                for n, s in workers(spec).items()}
    assert targets == expected


def test_compose_grafana_provisions_the_datasource_and_the_dashboard() -> None:
    spec = compose()
    grafana = spec["services"]["grafana"]
    mounts = bind_mounts(grafana)
    provisioning = DEPLOY / mounts["/etc/grafana/provisioning"]
    (source,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert source["type"] == "prometheus" and source["isDefault"] is True
    host, port = source["url"].removeprefix("http://").split(":")
    assert host in spec["services"]
    assert f"127.0.0.1:{port}:{port}" in spec["services"][host]["ports"]
    (provider,) = load_yaml(provisioning / "dashboards" / "mot.yml")["providers"]
    dashboards = DEPLOY / mounts[provider["options"]["path"]]
    assert (dashboards / "mot.json").is_file()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert PurePosixPath(home).parent == PurePosixPath(provider["options"]["path"])


# --- Kubernetes -------------------------------------------------------------------------

def manifests() -> dict[str, dict[str, Any]]:
    kustomization = load_yaml(DEPLOY / "kubernetes" / "kustomization.yaml")
    out: dict[str, dict[str, Any]] = {}
    for name in kustomization["resources"]:
        doc = load_yaml(DEPLOY / "kubernetes" / name)
        assert doc["apiVersion"] and doc["metadata"]["name"]
        out[doc["kind"]] = doc
    return out


def test_kubernetes_workers_are_a_statefulset_with_state_probes_and_routing() -> None:
    m = manifests()
    sts, svc, config = m["StatefulSet"], m["Service"], m["ConfigMap"]
    pod = sts["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert sts["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["selector"].items() <= labels.items()
    assert m["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert sts["spec"]["serviceName"] == svc["metadata"]["name"]
    assert svc["spec"]["clusterIP"] == "None", "headless: one DNS name per worker"

    (container,) = pod["spec"]["containers"]
    assert container["args"] == ["worker"]
    env = {e["name"]: e for e in container["env"]}
    settings = check_service_env({**config["data"],
                                  **{k: e.get("value", "") for k, e in env.items()}})
    assert {r["configMapRef"]["name"] for r in container["envFrom"] if "configMapRef" in r} \
        == {config["metadata"]["name"]}
    web_host = env["MOT_WEB_HOST"]["value"]
    assert web_host.startswith("$(POD_NAME)." + svc["metadata"]["name"] + ".")
    assert {"POD_NAME", "POD_NAMESPACE"} <= set(env)

    (port,) = container["ports"]
    assert port["containerPort"] == settings.web_port == DEFAULTS.web_port
    (svc_port,) = svc["spec"]["ports"]
    assert svc_port["port"] == settings.web_port and svc_port["targetPort"] == port["name"]
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/health" and probe["port"] == port["name"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(settings.web_port)
    assert annotations["prometheus.io/path"] == "/metrics"

    (claim,) = sts["spec"]["volumeClaimTemplates"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    assert mount["mountPath"] == settings.data_dir == docker_env()["MOT_DATA_DIR"]

    uid = re.search(r"--uid (\d+)", (REPO / "Dockerfile").read_text())
    assert uid is not None
    assert pod["spec"]["securityContext"]["runAsUser"] == int(uid.group(1))
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    images = load_yaml(DEPLOY / "kubernetes" / "kustomization.yaml")["images"]
    assert container["image"] in {i["name"] for i in images}


def worker_pod() -> tuple[dict[str, Any], dict[str, Any], Settings]:
    """The StatefulSet's pod template, its container, and the settings they give."""
    m = manifests()
    pod = m["StatefulSet"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    return pod, container, check_service_env({**m["ConfigMap"]["data"], **env})


def test_kubernetes_network_policy_admits_only_workers_and_prometheus_to_the_web_port() -> None:
    pod, container, settings = worker_pod()
    policy = manifests()["NetworkPolicy"]
    labels = pod["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    (port,) = rule["ports"]
    (container_port,) = container["ports"]
    assert port == {"protocol": "TCP", "port": settings.web_port}
    assert container_port["containerPort"] == settings.web_port
    workers, prometheus = rule["from"]
    assert set(workers) == {"podSelector"}, "workers of this namespace only"
    assert workers["podSelector"]["matchLabels"].items() <= labels.items()
    assert prometheus["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert prometheus["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"}
    documented = (DEPLOY / "prometheus" / "prometheus.yml").read_text() \
        + (REPO / "docs" / "security.md").read_text()
    assert "app.kubernetes.io/name=prometheus" in documented
    assert '"monitoring"' in documented


def test_kubernetes_web_token_secret_is_mounted_where_the_worker_reads_it() -> None:
    pod, container, settings = worker_pod()
    secret = load_yaml(DEPLOY / "kubernetes" / "web-token-secret.yaml")
    assert secret["kind"] == "Secret"
    resources = load_yaml(DEPLOY / "kubernetes" / "kustomization.yaml")["resources"]
    assert "web-token-secret.yaml" not in resources, "re-applying must not replace the token"
    (volume,) = [v for v in pod["spec"]["volumes"]
                 if v.get("secret", {}).get("secretName") == secret["metadata"]["name"]]
    assert volume["secret"].get("optional") is not True
    (item,) = volume["secret"]["items"]
    assert item["key"] in secret["stringData"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    assert "subPath" not in mount, "a subPath mount is never updated: no rotation"
    assert settings.web_token_file == f"{mount['mountPath']}/{item['path']}"
    assert settings.web_bind == "0.0.0.0", "the reason the token is required"
    assert settings.metrics_token_file == "", "/metrics open, as the annotations scrape it"


def test_compose_workers_read_the_token_from_a_docker_secret() -> None:
    spec = compose()
    secrets = spec["secrets"]
    for name, service in workers(spec).items():
        s = check_service_env(service["environment"])
        (secret,) = service["secrets"]
        assert s.web_token_file == f"/run/secrets/{secret}", name
        source = DEPLOY / secrets[secret]["file"]
        assert source.parent == DEPLOY / "secrets"
    ignore = (DEPLOY / "secrets" / ".gitignore").read_text().split()
    assert "*" in ignore, "tokens made on each machine are never committed"


def test_prometheus_shows_the_protected_metrics_job_too() -> None:
    text = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    config = yaml.safe_load(text)
    (open_job,) = config["scrape_configs"]
    commented = [ln.removeprefix("  # ") for ln in text.splitlines() if ln.startswith("  # ")
                 and ln.removeprefix("  # ").lstrip().startswith(("-", "job_name", "metrics",
                                                                    "authorization", "type",
                                                                    "credentials", "static",
                                                                    "targets"))]
    (protected,) = yaml.safe_load("\n".join(commented))
    assert protected["job_name"] == open_job["job_name"], "rules select the job by name"
    assert protected["authorization"]["type"] == "Bearer"
    assert protected["authorization"]["credentials_file"].startswith("/etc/prometheus/")
    assert protected["static_configs"] == open_job["static_configs"]


# --- Grafana dashboard ------------------------------------------------------------------

def dashboard_module() -> ModuleType:
    """deploy/grafana/dashboard.py, which is a script rather than part of a package."""
    spec = importlib.util.spec_from_file_location("mot_dashboard",
                                                  DEPLOY / "grafana" / "dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_committed_dashboard_is_what_its_generator_makes() -> None:
    gen = dashboard_module()
    assert gen.OUTPUT == DEPLOY / "grafana" / "dashboards" / "mot.json"
    assert gen.OUTPUT.read_text(encoding="utf-8") == gen.render(), \
        "run python deploy/grafana/dashboard.py"


def test_dashboard_panels_use_only_exported_metrics_and_fit_the_grid() -> None:
    dash = json.loads((DEPLOY / "grafana" / "dashboards" / "mot.json").read_text())
    known = exported_series_names() | {"up"}
    queries = dashboard_queries(dash)
    for title, expr in queries:
        used = set(re.findall(r"\b(mot_[a-z_]+|up)\b(?=\s*[{\[)])", expr))
        assert used and used <= known, (title, used - known)
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    cells: set[tuple[int, int]] = set()
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])}
        assert not mine & cells, f"{p['title']} overlaps another panel"
        cells |= mine
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for p in panels:
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
    titles = {p["title"] for p in panels}
    for wanted in ("Event throughput", "Failed moments by touchpoint",
                   "Failed moments by channel", "Running score distribution",
                   "Dead letters by reason", "Processing latency", "Consumer lag by partition"):
        assert wanted in titles


def test_topic_names_in_the_deployment_files_are_the_defaults() -> None:
    """Alert texts and rule tests name topics; they must be the ones the service uses."""
    rules = load_yaml(DEPLOY / "prometheus" / "rules.yml")
    not_topics = {g["name"] for g in rules["groups"]} | {"mot.json", "mot.reason"}
    named: set[str] = set()
    for path in [*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")]:
        named |= set(re.findall(r"\bmot\.[a-z][a-z.-]*[a-z]", path.read_text())) - not_topics
    assert named, "the rules name the input topic"
    assert named <= set(TOPIC_VARIABLES.values()), named - set(TOPIC_VARIABLES.values())


def test_the_kafka_acls_name_every_topic_each_principal_uses() -> None:
    """docs/security.md's least-privilege ACLs: the worker reads the input and writes the
    alerts, the dead letters and every internal topic (all under the prefixed ACL of the
    app id), producers write the input, ops tools read the alerts."""
    import streams.worker  # noqa: F401  (every agent, table and topic)
    from agents.silent_journeys import journey_timeouts_topic
    from agents.touchpoints import observations_topic
    from streams.app import app, settings

    acls = (REPO / "docs" / "security.md").read_text().split("## Kafka ACLs", 1)[1]
    internal = {t.changelog_topic.get_topic_name() for t in app.tables.values()}
    internal |= {t.get_topic_name() for t in (journey_timeouts_topic, observations_topic)}
    assert len(internal) >= 7
    for name in internal:
        assert name.startswith(settings.app_id + "-")
        default_name = DEFAULTS.app_id + name.removeprefix(settings.app_id)
        assert f"`{default_name}`" in acls, f"{default_name} missing from the worker's ACLs"
    assert f"--resource-pattern-type prefixed --topic {DEFAULTS.app_id}-" in acls

    alerts = {DEFAULTS.topic_alerts_failed_moment, DEFAULTS.topic_alerts_circles,
              DEFAULTS.topic_alerts_drop_off, DEFAULTS.topic_alerts_touchpoint_status}
    loops = {(principal, operation): set(topics.split())
             for topics, principal, operation in re.findall(
                 r"for t in ([^;]*); do\s+\$ACLS --add --allow-principal User:(\S+) "
                 r"--operation (\w+)", acls.replace("\\\n", " "))}
    outputs = alerts | {DEFAULTS.topic_dead_letter}
    assert loops == {("mot-worker", "Write"): outputs, ("mot-ops", "Read"): outputs}
    single = re.findall(r"User:(\S+) --operation (\w+) --operation Describe\s+--topic (\S+)",
                        acls.replace("\\\n", " "))
    assert sorted(s for s in single if s[2] != '"$t"') == [
        ("mot-producer", "Write", DEFAULTS.topic_events),
        ("mot-worker", "Read", DEFAULTS.topic_rules),
        ("mot-worker", "Read", DEFAULTS.topic_events)]
    assert (f"User:mot-rules --operation Read --operation Write --operation Describe "
            f"--topic {DEFAULTS.topic_rules}") in " ".join(acls.replace("\\\n", " ").split())
