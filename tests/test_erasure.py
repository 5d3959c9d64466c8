"""Erasure without Kafka: the keyed hash, the receipt and its id, the request contract,
the suppression policies, hashed alerts against their schemas, and ``mot forget``'s ids."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from agents.domain import erasure as e
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record
from schemas import schema_path
from schemas.erasure_request import InvalidRequest, decode_request, request_record
from streams.cli import forget_ids
from streams.settings import Settings, SettingsError


def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_path(name).read_text()),
                                format_checker=FormatChecker())


REQUEST = validator("erasure-request.v1")
RECEIPT = validator("erasure-receipt.v1")
KEY = b"k" * 32


def test_the_hash_is_hmac_sha256_of_the_id_with_the_key() -> None:
    h = e.customer_hash(KEY, "alice")
    assert h == hmac.new(KEY, b"alice", hashlib.sha256).hexdigest()
    assert e.customer_hash(b"another key", "alice") != h
    assert e.customer_hash(KEY, "bob") != h


def test_the_receipt_id_depends_on_request_and_hash_only() -> None:
    h = e.customer_hash(KEY, "alice")
    rid = e.receipt_id("req-1", h)
    assert uuid.UUID(rid).version == 5
    assert e.receipt_id("req-1", h) == rid
    assert e.receipt_id("req-2", h) != rid
    assert e.receipt_id("req-1", e.customer_hash(KEY, "bob")) != rid


@pytest.mark.parametrize("servers, loopback", [
    ("127.0.0.1:9092", True), ("localhost:9092,127.0.0.2:9093", True),
    ("[::1]:9092", True), ("kafka://127.0.0.1:9092", True),
    ("kafka:9092", False), ("10.0.0.5:9092", False), ("127.0.0.1:9092,kafka-2:9092", False),
    ("", False),
])
def test_loopback_means_every_broker_on_this_machine(servers: str, loopback: bool) -> None:
    assert e.is_loopback(servers) is loopback


def test_the_key_file_comes_first_then_the_inline_key_then_the_local_default() -> None:
    assert e.choose_key(b" from-file\n", "inline", "kafka:9092") == b"from-file"
    assert e.choose_key(None, "inline", "kafka:9092") == b"inline"
    assert e.choose_key(b"\n", "inline", "kafka:9092") == b"inline"
    assert e.choose_key(None, "", "127.0.0.1:9092") == e.LOCAL_ONLY_KEY
    with pytest.raises(e.HashKeyMissing, match="MOT_ERASURE_HASH_KEY_FILE"):
        e.choose_key(None, "", "kafka:9092")


VALID = [
    {"schema": "mot.erasure-request/v1", "request_id": "req-1", "customer_id": "alice"},
    {"schema": "mot.erasure-request/v1", "request_id": "TICKET:2026/11-7",
     "customer_id": "c" * 128, "requested_at": "2026-11-30T12:00:00Z",
     "requested_by": "privacy-desk"},
]
INVALID = [
    ({"request_id": "req-1", "customer_id": "alice"}, "missing_field"),
    ({"schema": "mot.erasure-request/v2", "request_id": "r", "customer_id": "a"},
     "invalid_value"),
    ({"schema": "mot.erasure-request/v1", "request_id": "-bad", "customer_id": "a"},
     "invalid_value"),
    ({"schema": "mot.erasure-request/v1", "request_id": "r", "customer_id": ""},
     "invalid_value"),
    ({"schema": "mot.erasure-request/v1", "request_id": "r", "customer_id": 7}, "wrong_type"),
    ({"schema": "mot.erasure-request/v1", "request_id": "r", "customer_id": "a",
      "note": "x"}, "unknown_field"),
    ({"schema": "mot.erasure-request/v1", "request_id": "r", "customer_id": "a",
      "requested_at": "yesterday"}, "invalid_value"),
    ([1, 2], "wrong_type"),
]


@pytest.mark.parametrize("request_", VALID)
def test_a_valid_request_passes_both_the_schema_and_the_worker_s_check(
        request_: dict[str, Any]) -> None:
    REQUEST.validate(request_)
    decoded = decode_request(orjson.dumps(request_))
    assert (decoded.request_id, decoded.customer_id, decoded.requested_at,
            decoded.requested_by) == (request_["request_id"], request_["customer_id"],
                                      request_.get("requested_at"), request_.get("requested_by"))


@pytest.mark.parametrize("request_, reason", INVALID)
def test_an_invalid_request_fails_both_with_a_reason(request_: Any, reason: str) -> None:
    assert not REQUEST.is_valid(request_)
    with pytest.raises(InvalidRequest) as exc:
        decode_request(orjson.dumps(request_))
    assert exc.value.reason == reason


@pytest.mark.parametrize("raw, reason", [(b"", "empty_record"), (b"{", "invalid_json"),
                                         (b" " * 5000, "too_large")])
def test_an_unreadable_request_has_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        decode_request(raw)
    assert exc.value.reason == reason


def test_mot_forget_sends_what_the_worker_accepts_keyed_by_customer() -> None:
    key, value = request_record("alice", "r-1", "2026-11-30T12:00:00Z", "dpo")
    assert key == b"alice"
    REQUEST.validate(orjson.loads(value))
    assert decode_request(value).customer_id == "alice"


def test_mot_forget_takes_ids_from_arguments_and_a_file(tmp_path: Path) -> None:
    f = tmp_path / "ids.txt"
    f.write_text("bob\n\n  carol  \nalice\n")
    assert forget_ids(["alice", "dave"], str(f)) == ["alice", "dave", "bob", "carol"]
    assert forget_ids([], None) == []


def receipt(repeat: bool = False) -> dict[str, Any]:
    h = e.customer_hash(KEY, "alice")
    removed = [e.removal("customer-state", "table", 1, "mot-customer-state-changelog"),
               e.removal("open-circles", "memory", 0)]
    entry = e.suppression_entry("req-1", h, 1_780_000_000.0, 30 * 86400, removed,
                                "http://w1:6066")
    return e.build_receipt("req-1", h, entry, 3, "dead-letter", ["customer-state"], [],
                           repeat).value


def test_a_receipt_follows_its_schema_and_never_holds_the_id() -> None:
    r = receipt()
    RECEIPT.validate(r)
    assert "alice" not in orjson.dumps(r).decode()
    assert r["receipt_id"] == e.receipt_id("req-1", e.customer_hash(KEY, "alice"))
    assert r["suppressed_until"] == "2026-06-27T20:26:40.000Z"
    assert r["removed"][0] == {"store": "customer-state", "kind": "table", "entries": 1,
                               "changelog": "mot-customer-state-changelog"}
    assert receipt(repeat=True)["receipt_id"] == r["receipt_id"]


def test_suppression_lasts_the_period_and_no_longer() -> None:
    entry = e.suppression_entry("r", "h", 1000.0, 60.0, [], "w")
    assert e.is_suppressed(entry, 1059.9)
    assert not e.is_suppressed(entry, 1060.0)
    assert not e.is_suppressed(None, 0.0)
    assert not e.is_suppressed(e.suppression_entry("r", "h", 1000.0, 0.0, [], "w"), 1000.0)


def test_holds_id_looks_through_keys_values_and_lists() -> None:
    assert e.holds_id({"b": [[1, "x-alice-y"]]}, "alice")
    assert e.holds_id({"alice": 1}, "alice")
    assert not e.holds_id({"b": [1.0, None, True], "s": "bob"}, "alice")


def story() -> list[dict[str, Any]]:
    """Three failures in one journey, then an abandonment: every customer alert kind."""
    def ev(i: int, **signals: Any) -> dict[str, Any]:
        return {"event_id": f"e{i}", "customer_id": "alice", "journey_id": "j1",
                "occurred_at": f"2026-05-28T10:{i:02d}:00Z", "touchpoint": "support.phone",
                "channel": "phone", **signals}
    return [ev(0, csat=1), ev(1, csat=1), ev(2, csat=1), ev(3, outcome="abandoned")]


def test_hashed_alerts_still_follow_their_schemas() -> None:
    states: dict[str, Any] = {}
    outputs = []
    for event in story():
        done = process_record(orjson.dumps(event), b"alice", states.get, ModelConfig(), 65536,
                              1_780_000_000.0)
        assert done.state is not None
        states["alice"] = done.state
        outputs += done.outputs
    assert {o.kind for o in outputs} >= {"failed-moment", "vicious-circle", "drop-off"}
    h = e.customer_hash(KEY, "alice")
    for out in outputs:
        hashed = e.with_customer_hash(out.value, h)
        assert hashed["customer_id"] == h and out.value["customer_id"] == "alice"
        validator(f"{out.kind}-alert.v1").validate(hashed)


@pytest.mark.parametrize("env, name", [
    ({"MOT_ERASURE_POLICY": "forget"}, "MOT_ERASURE_POLICY"),
    ({"MOT_ALERT_CUSTOMER_ID": "masked"}, "MOT_ALERT_CUSTOMER_ID"),
    ({"MOT_ERASURE_SUPPRESSION_S": "-1"}, "MOT_ERASURE_SUPPRESSION_S"),
])
def test_an_unusable_erasure_setting_names_its_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_the_erasure_defaults() -> None:
    s = Settings.from_env({})
    assert (s.erasure_policy, s.erasure_suppression_s, s.alert_customer_id) == (
        "dead-letter", 30 * 86400.0, "plain")
    assert (s.topic_erasure_requests, s.topic_erasure_receipts) == (
        "mot.erasure-requests", "mot.erasure-receipts")


def first_moment(customer_id: str) -> Any:
    event = {"event_id": "x1", "customer_id": customer_id, "touchpoint": "web.search",
             "occurred_at": "2026-05-28T10:00:00Z", "csat": 4}
    return process_record(orjson.dumps(event), customer_id.encode(), lambda _: None,
                          ModelConfig(), 65536, 1_780_000_000.0)


@pytest.mark.parametrize("policy, handled", [("drop-counted", True), ("accept", False)])
def test_a_later_event_of_an_erased_customer_follows_the_policy(
        monkeypatch: pytest.MonkeyPatch, policy: str, handled: bool) -> None:
    from agents import suppression
    from streams import metrics as m

    monkeypatch.setattr(suppression, "settings", replace(suppression.settings,
                                                         erasure_policy=policy))
    chash = suppression.hashed("gone")
    entries = {chash: e.suppression_entry("r", chash, 1e12, 60.0, [], "w")}  # not yet over
    monkeypatch.setattr(suppression, "stored", lambda table, key: entries.get(key))
    record = SimpleNamespace(key=b"gone", topic="t", partition=0, offset=1, timestamp=None)
    before = m.erasure_suppressed.labels(policy)._value.get()
    assert asyncio.run(suppression.suppressed(record, first_moment("gone"))) is handled
    assert m.erasure_suppressed.labels(policy)._value.get() == before + 1
    # a customer never erased, and a customer the table knows, are not looked up
    assert asyncio.run(suppression.suppressed(record, first_moment("new"))) is False


def test_hashed_alerts_carry_the_hash_as_customer_id_and_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from agents import suppression
    from agents.domain.moment_processor import Output

    out = Output("failed-moment", "alice", {"customer_id": "alice", "alert_id": "a-1"})
    assert suppression.alert_record(out) == (b"alice", orjson.dumps(out.value))
    monkeypatch.setattr(suppression, "settings", replace(suppression.settings,
                                                         alert_customer_id="hashed"))
    key, value = suppression.alert_record(out)
    chash = suppression.hashed("alice")
    assert key == chash.encode()
    assert orjson.loads(value) == {"customer_id": chash, "alert_id": "a-1"}


def test_a_worker_beyond_loopback_refuses_to_start_without_a_hash_key(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("MOT_")}
    env.update(MOT_KAFKA_BOOTSTRAP_SERVERS="kafka.invalid:9092", MOT_STORE="memory://",
               MOT_DATA_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "streams.worker"], env=env,
                          cwd=Path(__file__).resolve().parents[1], capture_output=True,
                          timeout=120)
    assert done.returncode == 1
    assert b"MOT_ERASURE_HASH_KEY_FILE or MOT_ERASURE_HASH_KEY is required" in done.stderr
