"""Settings from the environment: switches read as an operator would write them, and a
value the service cannot use stops the start with the variable's name."""

from __future__ import annotations

import ast
import inspect
import os
import re
import tempfile
import textwrap
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from agents.domain.attribution import BlameConfig
from agents.domain.circles import CircleConfig
from agents.domain.journeys import JourneyConfig
from agents.domain.model_config import ModelConfig
from agents.domain.quality import QualityConfig
from agents.domain.running_score import ScoreConfig
from agents.domain.touchpoint_status import StatusConfig
from agents.domain.tunables import MODEL, UNITS, Tunable
from streams.settings import (
    REGENERATE,
    SECTIONS,
    TUNABLES,
    Settings,
    SettingsError,
    markdown,
)


@pytest.mark.parametrize("raw", ["true", "TRUE", "1", "yes", "on"])
def test_a_switch_turns_on(raw: str) -> None:
    assert Settings.from_env({"MOT_BATCH_DELIVERY": raw}).batch_delivery is True


@pytest.mark.parametrize("raw", ["false", "0", "no", "off", " False "])
def test_a_switch_turns_off(raw: str) -> None:
    assert Settings.from_env({"MOT_BATCH_DELIVERY": raw}).batch_delivery is False


def test_batch_delivery_is_on_unless_switched_off() -> None:
    assert Settings.from_env({}).batch_delivery is True


def test_one_standby_copy_unless_told_otherwise() -> None:
    assert Settings.from_env({}).standby_replicas == 1
    assert Settings.from_env({"MOT_STANDBY_REPLICAS": "0"}).standby_replicas == 0


@pytest.mark.parametrize("env, name", [
    ({"MOT_BATCH_DELIVERY": "maybe"}, "MOT_BATCH_DELIVERY"),
    ({"MOT_MAX_POLL_RECORDS": "0"}, "MOT_MAX_POLL_RECORDS"),
    ({"MOT_STREAM_BUFFER_BATCHES": "0"}, "MOT_STREAM_BUFFER_BATCHES"),
    ({"MOT_STANDBY_REPLICAS": "-1"}, "MOT_STANDBY_REPLICAS"),
    ({"MOT_STANDBY_REPLICAS": "one"}, "MOT_STANDBY_REPLICAS"),
])
def test_an_unusable_value_names_its_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


# The declaration: every tunable once, with its variable, unit and meaning; Settings, the
# domain configs and docs/configuration.md all follow it.

def _token_file() -> str:
    """A readable token file, for the settings that must name one."""
    fd, path = tempfile.mkstemp(prefix="mot-test-token-")
    os.write(fd, b"a-test-token\n")
    os.close(fd)
    return path


_TOKEN_FILE = _token_file()


def _changed(t: Tunable) -> Any:
    """A value other than the default that the model's rules still accept."""
    special: dict[str, Any] = {"kafka_security_protocol": "SSL", "touchpoint_amber_ratio": 3.0,
                               "web_token_file": _TOKEN_FILE, "metrics_token_file": _TOKEN_FILE,
                               "web_bind": "127.0.0.2",
                               "erasure_policy": "accept", "alert_customer_id": "hashed",
                               "store_compression": "lz4"}
    if t.name in special:
        return special[t.name]
    if t.kind is bool:
        return not t.default
    if t.kind is int:
        return t.default + 1
    if t.kind is float:
        return t.default * 0.5 if t.default else 0.5
    return "x" + t.default


def _env_text(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def test_every_tunable_is_declared_once_with_its_variable_unit_and_meaning() -> None:
    declared = [t for section in SECTIONS for t in section.tunables]
    assert len(declared) == len({t.name for t in declared}) == len(TUNABLES)
    assert {f.name for f in fields(Settings)} == set(TUNABLES)
    for t in declared:
        assert t.name.isidentifier() and t.name == t.name.lower(), t.name
        assert t.variable == "MOT_" + t.name.upper()
        assert t.unit in UNITS, f"{t.variable}: unit {t.unit!r} is not one of UNITS"
        assert t.meaning.strip() and "\n" not in t.meaning, t.variable


@pytest.mark.parametrize("name", sorted(TUNABLES))
def test_each_variable_sets_its_field_and_nothing_else(name: str) -> None:
    t = TUNABLES[name]
    if name == "processing_guarantee":  # one accepted value; see the tests below
        assert Settings().processing_guarantee == t.default == "at_least_once"
        return
    value = _changed(t)
    changed = Settings.from_env({t.variable: _env_text(value)})
    assert getattr(changed, name) == value != getattr(Settings(), name) == t.default
    assert replace(changed, **{name: t.default}) == Settings()


def test_the_model_defaults_are_the_declared_ones() -> None:
    assert ModelConfig() == ModelConfig.from_settings(Settings())
    assert ModelConfig().score.half_life_s == Settings().half_life_days * 86400.0
    assert ModelConfig().circles.vicious_window_s == Settings().vicious_window_h * 3600.0


@pytest.mark.parametrize("name", [t.name for s in MODEL for t in s.tunables])
def test_every_model_tunable_reaches_the_model(name: str) -> None:
    changed = Settings(**{name: _changed(TUNABLES[name])})
    assert ModelConfig.from_settings(changed) != ModelConfig()


CONFIGS = [QualityConfig, ScoreConfig, CircleConfig, JourneyConfig, BlameConfig, StatusConfig,
           ModelConfig]
NOT_SETTINGS = {("JourneyConfig", "closed_memory")}


def test_no_domain_config_writes_a_default_of_its_own() -> None:
    """A number in a config's field default would be a second copy of the declaration."""
    for cls in CONFIGS:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and node.value is not None):
                continue
            numbers = [c for c in ast.walk(node.value) if isinstance(c, ast.Constant)
                       and isinstance(c.value, int | float)]
            if (cls.__name__, node.target.id) not in NOT_SETTINGS:
                assert not numbers, f"{cls.__name__}.{node.target.id} has a literal default"


_BOUND = re.compile(r"^(>|≥) (\S+)$")
_RANGE = re.compile(r"^within ([\[(])(\S+), (\S+)([\])])$")


def _number(t: Tunable, text: str) -> float:
    return float(TUNABLES[text[4:].lower()].default if text.startswith("MOT_") else text)


def _outside(t: Tunable) -> list[float]:
    """Values just outside the bounds the tunable's documented rule states."""
    if m := _BOUND.match(t.rule):
        bound = _number(t, m[2])
        return [bound if m[1] == ">" else bound - 1]
    if m := _RANGE.match(t.rule):
        low, high = _number(t, m[2]), _number(t, m[3])
        return [low if m[1] == "(" else low - 1, high if m[4] == ")" else high + 1]
    return []


RULED = [t.name for t in TUNABLES.values() if _outside(t)]


def test_the_numeric_rules_are_read() -> None:
    assert len(RULED) > 40
    assert {"red_quality", "touchpoint_bucket_s", "kafka_session_timeout_s"} <= set(RULED)


@pytest.mark.parametrize("name", RULED)
def test_a_value_outside_the_documented_rule_stops_the_start(name: str) -> None:
    t = TUNABLES[name]
    for value in _outside(t):
        raw = str(int(value)) if t.kind is int else repr(value)
        with pytest.raises(SettingsError, match=rf"\b{t.variable}\b"):
            Settings.from_env({t.variable: raw})


def test_exactly_once_is_refused_with_the_reason_and_what_to_use() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"MOT_PROCESSING_GUARANTEE": "exactly_once"})
    message = str(caught.value)
    assert message.startswith("MOT_PROCESSING_GUARANTEE=exactly_once is not supported: ")
    assert message.endswith("use at_least_once")
    with pytest.raises(SettingsError, match="MOT_PROCESSING_GUARANTEE must be at_least_once"):
        Settings.from_env({"MOT_PROCESSING_GUARANTEE": "at_most_once"})
    explicit = Settings.from_env({"MOT_PROCESSING_GUARANTEE": "at_least_once"})
    assert explicit.processing_guarantee == "at_least_once"


def test_the_configuration_doc_is_generated_from_the_declaration() -> None:
    doc = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"
    assert doc.read_text() == markdown(), f"docs/configuration.md is stale: run `{REGENERATE}`"
    for t in TUNABLES.values():
        assert f"| `{t.variable}` |" in markdown()
