"""Rules as versioned data: the document, its generated schema, its validation, which version
applies to an event, and what an event read again or a change of rules does to the state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from agents.domain.moment_processor import process_record
from agents.domain.rules import (
    ENV_VERSION,
    TUNABLES,
    InvalidRules,
    RuleBook,
    env_rules,
    load_document,
    parse_rules,
    rules_schema,
)
from agents.domain.timestamps import parse
from streams.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "schemas" / "rules.v1.schema.json"
BASE = env_rules(Settings())
NOW = parse("2026-07-01T00:00:00Z")
T0 = parse("2026-06-01T08:00:00Z")


def test_the_committed_schema_is_the_one_generated_from_the_declaration() -> None:
    assert json.loads(SCHEMA.read_text()) == rules_schema(), (
        "schemas/rules.v1.schema.json is stale: run "
        "`python -m agents.domain.rules --schema > schemas/rules.v1.schema.json`")
    assert set(rules_schema()["properties"]) == {"schema", "version", "effective_from",
                                                 *TUNABLES}


def test_a_document_of_every_tunable_follows_the_schema_and_builds_that_model() -> None:
    doc = {"version": "2026-06-a", "effective_from": "2026-06-01T08:00:00Z",
           **{n: t.default for n, t in TUNABLES.items()}, "failed_threshold": -0.1,
           "recovery_ratio": 6}
    Draft202012Validator(rules_schema(), format_checker=FormatChecker()).validate(doc)
    rules = parse_rules(doc, BASE)
    assert rules.version == "2026-06-a" and rules.effective_from == T0
    assert rules.config.quality.failed_threshold == -0.1
    assert rules.config.score.recovery_ratio == 6.0
    assert rules.config.rules_version == "2026-06-a"
    assert rules.document()["effective_from"] == "2026-06-01T08:00:00.000Z"


def test_yaml_with_an_unquoted_time_and_a_number_as_version() -> None:
    rules = parse_rules(load_document(
        "version: 3\neffective_from: 2026-06-01T08:00:00Z\nfailed_threshold: -0.3\n"), BASE)
    assert (rules.version, rules.effective_from) == ("3", T0)
    assert rules.values["failed_threshold"] == -0.3


def test_a_tunable_left_out_keeps_the_environments_value() -> None:
    base = env_rules(Settings.from_env({"MOT_RECOVERY_RATIO": "8"}))
    assert base.version == ENV_VERSION and base.config.rules_version == ENV_VERSION
    rules = parse_rules({"version": "v2", "failed_threshold": -0.1}, base)
    assert rules.config.score.recovery_ratio == 8.0
    assert rules.effective_from is None


@pytest.mark.parametrize("doc, field, says", [
    ({"version": "v2", "failed_threshold": 2}, "failed_threshold", "within [-1, 1]"),
    ({"version": "v2", "failed_threshold": "low"}, "failed_threshold", "must be a number"),
    ({"version": "v2", "red_quality": -0.1}, "red_quality", "within [-1, failed_threshold]"),
    ({"version": "v2", "vicious_failures": 2.5}, "vicious_failures", "whole number"),
    ({"version": "v2", "vicious_red_failures": 2}, "vicious_red_failures",
     ">= vicious_failures"),
    ({"version": "v2", "half_life_days": 0}, "half_life_days", "> 0"),
    ({"version": "v2", "touchpoint_amber_ratio": 1}, "touchpoint_amber_ratio", "within (1, "),
    ({"version": "v2", "failed_treshold": -0.1}, "failed_treshold", "not a field"),
    ({"failed_threshold": -0.1}, "version", "required"),
    ({"version": "env"}, "version", "environment"),
    ({"version": "a b"}, "version", "letters"),
    ({"version": "v2", "effective_from": "2026-06-01 08:00"}, "effective_from", "Z suffix"),
    ({"version": "v2", "effective_from": "2026-06-01T08:00:00+02:00"}, "effective_from",
     "Z suffix"),
])
def test_an_invalid_document_is_refused_naming_the_field(doc: dict[str, Any], field: str,
                                                          says: str) -> None:
    with pytest.raises(InvalidRules) as caught:
        parse_rules(doc, BASE)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"rules.{field}: ")
    assert says in str(caught.value)


def test_the_schema_refuses_what_validation_refuses_on_fixed_bounds() -> None:
    validator = Draft202012Validator(rules_schema(), format_checker=FormatChecker())
    for bad in ({"version": "v2", "failed_threshold": 2}, {"failed_threshold": 0},
                {"version": "v2", "bogus": 1}, {"version": "env"},
                {"version": "v2", "half_life_days": 0}):
        assert list(validator.iter_errors(bad)), bad
    validator.validate({"version": "v2", "failed_threshold": -0.1})


def test_the_book_picks_the_version_by_event_time() -> None:
    v2 = parse_rules({"version": "v2", "effective_from": "2026-06-01T08:00:00Z",
                      "failed_threshold": -0.1}, BASE)
    v3 = parse_rules({"version": "v3", "effective_from": "2026-06-02T08:00:00Z"}, BASE)
    book = RuleBook(BASE, (v3, v2))
    assert book.at(T0 - 1).version == ENV_VERSION
    assert book.at(T0).version == "v2"
    assert book.at(T0 + 86400).version == "v3"
    assert book.latest.version == "v3"
    assert book.add(v2) is False  # the same version again: nothing changes
    with pytest.raises(InvalidRules, match=r"rules\.version"):
        book.add(parse_rules({"version": "v2", "failed_threshold": -0.3}, BASE))


def event(eid: str, at: float, **signals: Any) -> bytes:
    from agents.domain.timestamps import iso

    return orjson.dumps({"event_id": eid, "customer_id": "c-1", "occurred_at": iso(at),
                         "touchpoint": "checkout.payment", **signals})


def run(book: RuleBook, events: list[bytes], states: dict[str, Any]) -> list[dict[str, Any]]:
    alerts = []
    for raw in events:
        done = process_record(raw, b"c-1", states.get, book, 65536, NOW)
        assert done.rejected is None, done.rejected
        if done.state is not None:
            states["c-1"] = done.state
        alerts += [o.value for o in done.outputs]
    return alerts


# csat 2 → q = -0.5 (failed under both), ces 3 → q = -0.333…; sentiment -0.15 → q = -0.15:
# failed only once the threshold is -0.1.
MILD = {"sentiment": -0.15}


def test_alerts_carry_the_version_of_their_events_time_and_a_reread_keeps_its_version() -> None:
    v2 = parse_rules({"version": "v2", "effective_from": "2026-06-01T08:00:00Z",
                      "failed_threshold": -0.1}, BASE)
    book = RuleBook(BASE, (v2,))
    states: dict[str, Any] = {}
    before = run(book, [event("e1", T0 - 60, **MILD), event("e2", T0 - 30, csat=1)], states)
    assert [(a["event_id"], a["rules_version"]) for a in before] == [("e2", ENV_VERSION)]
    after = run(book, [event("e3", T0 + 10, **MILD)], states)
    assert [(a["event_id"], a["rules_version"], a["reason"]["threshold"]) for a in after] == [
        ("e3", "v2", -0.1)]
    # e2 read again (a crash before the offset commit), now that v2 applies to new events:
    # the same alert, under the version it was first scored under.
    again = run(book, [event("e2", T0 - 30, csat=1)], states)
    assert again == [{**before[0], "detected_at": again[0]["detected_at"]}]
    # A late version that would start before e2: e2 read again still re-sends it as it was.
    late = RuleBook(BASE, (parse_rules({"version": "v0", "effective_from":
                                        "2026-06-01T07:00:00Z", "red_quality": -0.9}, BASE),))
    again = run(late, [event("e2", T0 - 30, csat=1)], states)
    assert [(a["alert_id"], a["rules_version"], a["severity"]) for a in again] == [
        (before[0]["alert_id"], ENV_VERSION, before[0]["severity"])]


def test_a_change_of_rules_carries_scores_and_open_circles_on_without_recomputation() -> None:
    states: dict[str, Any] = {}
    opened = run(RuleBook(BASE), [event(f"f{i}", T0 - 3600 + i * 60, csat=1) for i in range(3)],
                 states)
    assert [a["lifecycle"] for a in opened if a["kind"] == "vicious-circle"] == ["opened"]
    score, circle = states["c-1"].score, states["c-1"].circles
    # λ halves and the circle rules change from T0 on: nothing already counted moves.
    v2 = parse_rules({"version": "v2", "effective_from": "2026-06-01T08:00:00Z",
                      "recovery_ratio": 6, "vicious_failures": 5, "vicious_red_failures": 6},
                     BASE)
    book = RuleBook(BASE, (v2,))
    assert book.at(T0).config.score.recovery_ratio == 6.0
    # the next failed moment: the old score decays on and the new λ weighs only this one
    from agents.domain.running_score import apply_moment

    at = states["c-1"].at
    out = run(book, [event("f9", T0 + 60, csat=1)], states)
    expected, _ = apply_moment(score, at, -1.0, 1.0, T0 + 60, v2.config.score)
    assert states["c-1"].score == pytest.approx(expected)
    failed = next(a for a in out if a["kind"] == "failed-moment")
    # the score before it is the one the old λ built (3 × −12, barely decayed), not a
    # recomputation of those failures under the new λ (3 × −6)
    assert failed["score_before"] == round(score, 6) and score < -30
    # the circle opened under the old rules is still open (no re-judging under the new
    # opening length), and its chain goes on: the fourth failure is not a new circle
    assert not [a for a in out if a["kind"] == "vicious-circle" and a["lifecycle"] == "opened"]
    assert states["c-1"].circles.vicious.number == circle.vicious.number


def test_a_worker_learns_a_version_refuses_an_invalid_one_and_keeps_its_rules() -> None:
    from agents.domain.rules import learn

    book = RuleBook(BASE)
    v2 = parse_rules({"version": "v2", "effective_from": "2026-06-01T08:00:00Z",
                      "failed_threshold": -0.1}, BASE)
    raw = orjson.dumps(v2.document())
    first = learn(book, raw, T0 - 3600)
    assert first.rules is not None and not first.late and book.at(T0).version == "v2"
    assert learn(book, raw, T0 + 10) == type(first)()  # the same record again: nothing
    for bad in (b"", b"\xff\xfe", b"version: [unclosed", b"not: a rules document",
                orjson.dumps({"version": "v3", "failed_threshold": 7})):
        outcome = learn(book, bad, T0)
        assert outcome.refused == "invalid" and outcome.rules is None, bad
    assert "rules.failed_threshold" in learn(
        book, orjson.dumps({"version": "v3", "failed_threshold": 7}), T0).detail
    conflict = learn(book, orjson.dumps({**v2.document(), "failed_threshold": -0.3}), T0)
    assert conflict.refused == "conflict"
    assert [r.version for r in book.versions()] == [ENV_VERSION, "v2"]
    assert book.at(T0).config.quality.failed_threshold == -0.1


def test_a_version_learnt_late_starts_after_the_events_already_scored() -> None:
    from agents.domain.rules import learn

    book = RuleBook(BASE)
    v2 = parse_rules({"version": "v2", "effective_from": "2026-06-01T08:00:00Z"}, BASE)
    scored = T0 + 600  # this worker scored events up to ten minutes past effective_from
    outcome = learn(book, orjson.dumps(v2.document()), scored)
    assert outcome.late and outcome.rules is not None
    assert book.at(scored).version == ENV_VERSION  # what was scored keeps its version
    assert book.at(scored + 0.001).version == "v2"
    assert book.at(T0 + 1).version == ENV_VERSION


def test_publish_refuses_an_effective_from_inside_the_lead_and_sets_one_when_absent() -> None:
    from streams.rules_publish import prepared

    s = Settings.from_env({"MOT_RULES_MIN_LEAD_S": "60"})
    now = T0 - 30
    with pytest.raises(InvalidRules) as caught:
        prepared("version: v2\neffective_from: 2026-06-01T08:00:00Z\n", s, now)
    assert caught.value.field == "effective_from"
    assert prepared("version: v2\neffective_from: 2026-06-01T08:00:00Z\n", s,
                    T0 - 60).effective_from == T0
    set_now = prepared("version: v2\nfailed_threshold: -0.1\n", s, now)
    assert set_now.effective_from == now + 60
    assert set_now.document()["failed_threshold"] == -0.1
    assert len(set_now.document()) == len(TUNABLES) + 2  # the complete document is sent
    with pytest.raises(InvalidRules, match=r"^rules\.failed_threshold: "):
        prepared("version: v2\nfailed_threshold: 2\n", s, now)


def test_a_version_learnt_late_times_out_journeys_only_after_the_events_already_scored() -> None:
    """The silence check takes the rules of its watermark: a version learnt late does not
    drop, under its shorter timeout, a journey the old rules still held open at a watermark
    the worker had already reached."""
    from agents.domain.moment_processor import process_silence_check
    from agents.domain.rules import learn

    book = RuleBook(BASE)
    states: dict[str, Any] = {}
    last = T0 - 1200  # the journey's last step, 20 minutes before what the worker scored
    run(book, [orjson.dumps({**orjson.loads(event("j-1", last, csat=4)),
                             "journey_id": "j-1", "journey": "purchase"})], states)
    v2 = parse_rules({"version": "v2", "effective_from": "2026-06-01T07:00:00Z",
                      "journey_timeout_s": 600}, BASE)
    assert learn(book, orjson.dumps(v2.document()), T0).late  # scored up to T0 already

    def dropped(watermark: float) -> list[dict[str, Any]]:
        done = process_silence_check(states["c-1"], "c-1", watermark, book, NOW)
        return [o.value for o in done.outputs]

    assert dropped(T0) == []  # 20 minutes silent: open under the old hour
    [alert] = dropped(T0 + 1)  # from just after T0 the 10-minute timeout applies
    assert (alert["kind"], alert["trigger"], alert["rules_version"]) == (
        "drop-off", "timeout", "v2")
    assert alert["silent_for_s"] == pytest.approx(1201)
    # on time, the same version would have dropped it at the earlier watermark already
    on_time = RuleBook(BASE, (v2,))
    assert [o.value["rules_version"] for o in process_silence_check(
        states["c-1"], "c-1", T0, on_time, NOW).outputs] == ["v2"]
