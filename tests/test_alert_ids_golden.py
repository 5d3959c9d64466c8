"""Alert ids pinned to literals: a change to how an id is derived breaks consumers'
deduplication, so it must break this test first.

``tests/golden/alert_ids.json`` holds inputs and the ids they must give: each id
function with its parts, and small stories run through the service's own per-record
function (and, for silent journeys, the silence check) with every alert they raise, of
every kind: failed-moment, the vicious circle's whole lifecycle (two circles), the
virtuous circle, drop-off by abandonment and by silence (both clocks), and the
touchpoint andon's transitions. The documentation's JSON examples are checked too: each
alert shown must carry the id its own fields give, and match its schema.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from msgspec.structs import replace

from agents.domain.alert_ids import ALERT_NAMESPACE, alert_id
from agents.domain.circles import circle_id, lifecycle_id
from agents.domain.customer_state import CustomerState
from agents.domain.drop_off import drop_off_alert, drop_off_id
from agents.domain.failed_moment import failed_moment_id
from agents.domain.journeys import expire_journeys
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record
from agents.domain.touchpoint_status import StatusConfig, observe, status_alert, transition_id
from schemas import schema_path

REPO = Path(__file__).resolve().parent.parent
GOLDEN = json.loads((Path(__file__).parent / "golden" / "alert_ids.json").read_text())
CFG = ModelConfig()
NOW = 1_800_000_000.0
DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
SCHEMAS = {  # the alert's "schema" field -> its contract in schemas/
    "mot.alert.failed-moment/v1": "failed-moment-alert.v1",
    "mot.alert.vicious-circle/v1": "vicious-circle-alert.v1",
    "mot.alert.virtuous-circle/v1": "virtuous-circle-alert.v1",
    "mot.alert.drop-off/v1": "drop-off-alert.v1",
    "mot.alert.touchpoint-status/v1": "touchpoint-status-alert.v1",
}
ID_FUNCTIONS = {
    "failed_moment_id": failed_moment_id,
    "circle_id": circle_id,
    "lifecycle_id": lifecycle_id,
    "drop_off_id": drop_off_id,
    "transition_id": transition_id,
}


def validator(schema: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_path(SCHEMAS[schema]).read_text()),
                                format_checker=FormatChecker())


def summary(alert: dict[str, Any]) -> dict[str, Any]:
    """What the golden file records of an alert: its kind, what tells it apart from the
    story's other alerts, and its id."""
    out: dict[str, Any] = {"kind": alert["kind"]}
    for name in ("lifecycle", "circle", "circle_id", "trigger", "journey_id", "event_id",
                 "status", "transition"):
        if name in alert:
            out[name] = alert[name]
    out["alert_id"] = alert["alert_id"]
    return out


def run_story(story: dict[str, Any]) -> list[dict[str, Any]]:
    """Every alert the story raises, in order, each checked against its schema."""
    alerts: list[dict[str, Any]] = []
    if "touchpoint" in story:  # the andon: moments of one touchpoint, phase by phase
        cfg = StatusConfig(**story["config"])
        st = None
        at = story["start"]
        acc = 0.0
        for seconds, rate in story["phases"]:
            for _ in range(seconds * story["per_s"]):
                acc += rate
                failed = acc >= 1.0
                if failed:
                    acc -= 1.0
                st, t, _late = observe(st, at, failed, cfg)
                if t is not None:
                    alerts.append(status_alert(story["touchpoint"], t, f"e-{t.seq}", cfg, NOW))
                at += 1.0 / story["per_s"]
    else:
        states: dict[str, CustomerState] = {}
        for event in story["events"]:
            done = process_record(json.dumps(event).encode(), event["customer_id"].encode(),
                                  states.get, CFG, 65536, NOW)
            assert done.rejected is None, (event, done.rejected)
            if done.state is not None:
                states[event["customer_id"]] = done.state
            alerts += [o.value for o in done.outputs]
        for customer_id, watermark in story.get("silence_checks", []):
            state = states[customer_id]
            js, change = expire_journeys(state.journeys, watermark, CFG.journeys)
            alerts += [drop_off_alert(customer_id, d, CFG.journeys,
                                      CFG.quality.failed_threshold, CFG.quality.red_quality,
                                      NOW) for d in change.dropped]
            states[customer_id] = replace(state, journeys=js)
    for alert in alerts:
        validator(alert["schema"]).validate(alert)
    return alerts


def test_the_namespace_is_pinned() -> None:
    assert str(ALERT_NAMESPACE) == GOLDEN["namespace"]


@given(st.text(min_size=1, max_size=40), st.lists(st.text(max_size=80), max_size=4))
def test_an_id_is_the_uuid5_of_its_kind_and_parts(kind: str, parts: list[str]) -> None:
    expected = str(uuid.uuid5(ALERT_NAMESPACE, "\x1f".join((kind, *parts))))
    assert alert_id(kind, *parts) == expected


@pytest.mark.parametrize("case", GOLDEN["ids"], ids=lambda c: f"{c['function']}{c['args']}")
def test_each_id_function_gives_its_pinned_id(case: dict[str, Any]) -> None:
    assert ID_FUNCTIONS[case["function"]](*case["args"]) == case["alert_id"]


@pytest.mark.parametrize("story", GOLDEN["stories"], ids=lambda s: s["name"])
def test_each_story_raises_exactly_its_pinned_alerts(story: dict[str, Any]) -> None:
    assert [summary(a) for a in run_story(story)] == story["alerts"]


def test_the_golden_file_covers_every_alert_kind_and_lifecycle() -> None:
    seen = {(a["kind"], a.get("lifecycle") or a.get("trigger"))
            for s in GOLDEN["stories"] for a in s["alerts"]}
    assert seen == {
        ("failed-moment", None),
        ("vicious-circle", "opened"), ("vicious-circle", "escalated"),
        ("vicious-circle", "resolved"),
        ("virtuous-circle", "opened"), ("virtuous-circle", "ended"),
        ("drop-off", "abandoned"), ("drop-off", "timeout"),
        ("touchpoint-status", None),
    }
    ids = [a["alert_id"] for s in GOLDEN["stories"] for a in s["alerts"]]
    assert len(ids) == len(set(ids))


# --- the documentation's examples ----------------------------------------------------

def derived_id(alert: dict[str, Any]) -> str:
    """The id the code gives the alert, from the alert's own fields."""
    kind = alert["kind"]
    if kind == "failed-moment":
        return failed_moment_id(alert["customer_id"], alert["event_id"])
    if kind in ("vicious-circle", "virtuous-circle"):
        return lifecycle_id(kind, alert["customer_id"], alert["circle"], alert["lifecycle"])
    if kind == "drop-off":
        return drop_off_id(alert["customer_id"], alert["journey_id"])
    if kind == "touchpoint-status":
        return transition_id(alert["touchpoint"], alert["transition"])
    raise AssertionError(f"an alert kind this test does not know: {kind}")


def doc_examples() -> list[tuple[str, dict[str, Any]]]:
    """(file:line, object) of every JSON object with an ``alert_id`` in a ```json block
    of the README or docs/ (a block may hold several objects one after another)."""
    found: list[tuple[str, dict[str, Any]]] = []
    decoder = json.JSONDecoder()
    for path in DOCS:
        text = path.read_text()
        for block in re.finditer(r"^```json\n(.*?)^```", text, re.M | re.S):
            body, pos = block.group(1), 0
            while True:
                while pos < len(body) and body[pos].isspace():
                    pos += 1
                if pos >= len(body):
                    break
                obj, end = decoder.raw_decode(body, pos)
                line = text.count("\n", 0, block.start(1) + pos) + 1
                if isinstance(obj, dict) and "alert_id" in obj:
                    found.append((f"{path.relative_to(REPO)}:{line}", obj))
                pos = end
    return found


def test_the_docs_show_examples_of_every_alert_kind() -> None:
    kinds = {obj["kind"] for _, obj in doc_examples()}
    assert kinds == {"failed-moment", "vicious-circle", "virtuous-circle", "drop-off",
                     "touchpoint-status"}


@pytest.mark.parametrize(("where", "alert"), doc_examples(),
                         ids=[w for w, _ in doc_examples()])
def test_each_documented_alert_carries_the_id_its_fields_give_and_fits_its_schema(
    where: str, alert: dict[str, Any]
) -> None:
    errors = sorted(e.message for e in validator(alert["schema"]).iter_errors(alert))
    assert not errors, f"{where}: {errors}"
    assert alert["alert_id"] == derived_id(alert), f"{where}: {alert['kind']}"
    if "circle_id" in alert:
        assert alert["circle_id"] == circle_id(alert["kind"], alert["customer_id"],
                                               alert["circle"]), where
