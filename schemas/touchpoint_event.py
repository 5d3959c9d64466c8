"""Fast validation of touchpoint events against schema v1.

``touchpoint-event.v1.schema.json`` is the contract producers code against; this
module is the hot-path check the worker runs on every record. It is hand-written
(a generic JSON Schema engine costs tens of microseconds per event) and a test
holds the two in agreement on generated valid and invalid events.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

OCCURRED_AT = re.compile(
    r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:"
    r"[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
)
TOUCHPOINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")
CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
JOURNEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}")
OUTCOMES = frozenset(("success", "delight", "failure", "abandoned"))
STAGES = frozenset(("first", "second"))
SIGNAL_FIELDS = ("outcome", "csat", "ces", "nps", "sentiment", "duration_s")
REQUIRED = ("event_id", "customer_id", "occurred_at", "touchpoint")
MAX_SECONDS = 31536000


class InvalidEvent(Exception):
    """A record that breaks the contract; ``reason`` is a stable machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _string(name: str, max_len: int = 128) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if type(v) is not str:
            raise InvalidEvent("wrong_type", f"{name}: expected string")
        if not 0 < len(v) <= max_len:
            raise InvalidEvent("invalid_value", f"{name}: length must be 1..{max_len}")

    return check


def _pattern(name: str, regex: re.Pattern[str]) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if type(v) is not str:
            raise InvalidEvent("wrong_type", f"{name}: expected string")
        if regex.fullmatch(v) is None:
            raise InvalidEvent("invalid_value", f"{name}: does not match {regex.pattern}")

    return check


def _enum(name: str, allowed: frozenset[str]) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if type(v) is not str or v not in allowed:
            raise InvalidEvent("invalid_value", f"{name}: must be one of {sorted(allowed)}")

    return check


def _integer(name: str, lo: int, hi: int) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if not (type(v) is int or (type(v) is float and v.is_integer())):
            raise InvalidEvent("wrong_type", f"{name}: expected integer")
        if not lo <= v <= hi:
            raise InvalidEvent("out_of_range", f"{name}: must be within {lo}..{hi}")

    return check


def _number(name: str, lo: float, hi: float, lo_exclusive: bool = False) -> Callable[[Any], None]:
    def check(v: Any) -> None:
        if type(v) is not int and type(v) is not float:
            raise InvalidEvent("wrong_type", f"{name}: expected number")
        if v > hi or v < lo or (lo_exclusive and v == lo):
            bound = f"({lo}" if lo_exclusive else f"[{lo}"
            raise InvalidEvent("out_of_range", f"{name}: must be within {bound}, {hi}]")

    return check


def _attributes(v: Any) -> None:
    if type(v) is not dict:
        raise InvalidEvent("wrong_type", "attributes: expected object")
    if len(v) > 32:
        raise InvalidEvent("invalid_value", "attributes: at most 32 properties")


FIELDS: dict[str, Callable[[Any], None]] = {
    "event_id": _string("event_id"),
    "customer_id": _string("customer_id"),
    "occurred_at": _pattern("occurred_at", OCCURRED_AT),
    "touchpoint": _pattern("touchpoint", TOUCHPOINT),
    "channel": _pattern("channel", CHANNEL),
    "journey_id": _string("journey_id"),
    "journey": _pattern("journey", JOURNEY),
    "stage": _enum("stage", STAGES),
    "weight": _number("weight", 0, 100, lo_exclusive=True),
    "recovery_of": _string("recovery_of"),
    "team": _string("team"),
    "attributes": _attributes,
    "outcome": _enum("outcome", OUTCOMES),
    "csat": _integer("csat", 1, 5),
    "ces": _integer("ces", 1, 7),
    "nps": _integer("nps", 0, 10),
    "sentiment": _number("sentiment", -1, 1),
    "duration_s": _number("duration_s", 0, MAX_SECONDS),
    "expected_duration_s": _number("expected_duration_s", 0, MAX_SECONDS, lo_exclusive=True),
}


def validate_event(event: Any) -> float:
    """Check a decoded event against schema v1; return its event time in epoch seconds.

    Raises :class:`InvalidEvent` naming the first problem found.
    """
    if type(event) is not dict:
        raise InvalidEvent("not_an_object", "the record must be a JSON object")
    for name in REQUIRED:
        if name not in event:
            raise InvalidEvent("missing_field", f"{name}: required")
    for name, value in event.items():
        check = FIELDS.get(name)
        if check is None:
            raise InvalidEvent("unknown_field", f"{name[:64]}: not in schema v1")
        check(value)
    if ("duration_s" in event) != ("expected_duration_s" in event):
        raise InvalidEvent("missing_field", "duration_s and expected_duration_s go together")
    for name in SIGNAL_FIELDS:
        if name in event:
            break
    else:
        raise InvalidEvent(
            "no_outcome_signal", "one of outcome, csat, ces, nps, sentiment, duration_s"
        )
    occurred_at = event["occurred_at"]
    if occurred_at[-1] == "z":  # RFC 3339 allows it; datetime.fromisoformat does not
        occurred_at = occurred_at[:-1] + "Z"
    try:
        return datetime.fromisoformat(occurred_at).timestamp()
    except ValueError as exc:  # e.g. 2026-02-30: the pattern passes, the calendar does not
        raise InvalidEvent("invalid_timestamp", f"occurred_at: {exc}") from None


def decode_event(raw: bytes | None, max_bytes: int) -> tuple[dict[str, Any], float]:
    """Decode and validate one record value: ``(event, occurred_at epoch seconds)``."""
    if raw is None or len(raw) == 0:
        raise InvalidEvent("empty_record", "the record has no value")
    if len(raw) > max_bytes:
        raise InvalidEvent("too_large", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", str(exc)[:200]) from None
    return event, validate_event(event)
