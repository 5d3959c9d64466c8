"""The touchpoint event, schema v1: one typed definition, its decoder and its JSON Schema.

:class:`TouchpointEvent` is the contract. Its field types carry the constraints, msgspec
decodes a record's JSON straight into it (in C, the constraints checked as it goes; the
four patterns are matched just after, see :data:`_PATTERNS`), and
``touchpoint-event.v1.schema.json``, the file producers code against, is generated from
it (:func:`json_schema`)::

    python -m schemas.touchpoint_event --json-schema > schemas/touchpoint-event.v1.schema.json

A test fails when the committed file differs from the generated one.

A record the decoder refuses is explained by :func:`validate_event`, whose checks are
built from the same definition (:data:`FIELDS`): it names the first problem with a stable
reason (``missing_field``, ``wrong_type``, ``out_of_range``, …) and a detail that quotes
no value from the record. Rejections are rare, so only they pay for it.

An absent optional field is :data:`msgspec.UNSET` (falsy), never ``None``: ``null`` is not
a value of any field.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
import orjson
from msgspec import UNSET, Meta, Struct, UnsetType
from msgspec import inspect as mi

REGENERATE = ("python -m schemas.touchpoint_event --json-schema"
              " > schemas/touchpoint-event.v1.schema.json")
MAX_SECONDS = 31536000

_TIME = (r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt ]([01][0-9]|2[0-3]):[0-5][0-9]:"
         r"[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])")
_NAME = r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}"
_CHANNEL = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_JOURNEY = r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}"
OCCURRED_AT = re.compile(_TIME)  # an RFC 3339 date-time with an offset (whole string)


def _integer(lo: int, hi: int) -> Any:
    """An integer, written as one (3) or as an integral number (3.0), like JSON Schema's."""
    return (Annotated[int, Meta(ge=lo, le=hi)]
            | Annotated[float, Meta(ge=lo, le=hi, multiple_of=1)])


def _number(lo: float, hi: float, *, lo_exclusive: bool = False) -> Any:
    """A number; an integer stays one (alerts quote the signals as they were sent)."""
    low = {"gt": lo} if lo_exclusive else {"ge": lo}
    return Annotated[int, Meta(le=hi, **low)] | Annotated[float, Meta(le=hi, **low)]


def _described(t: Any, description: str) -> Any:
    return Annotated[t, Meta(description=description)]


Text = Annotated[str, Meta(min_length=1, max_length=128)]
OccurredAt = Annotated[str, Meta(pattern=f"^{_TIME}$", extra_json_schema={"format": "date-time"})]
Touchpoint = Annotated[str, Meta(pattern=f"^{_NAME}$")]
Channel = Annotated[str, Meta(pattern=f"^{_CHANNEL}$")]
JourneyKind = Annotated[str, Meta(pattern=f"^{_JOURNEY}$")]
Stage = Literal["first", "second"]
Outcome = Literal["success", "delight", "failure", "abandoned"]
Weight = _described(_number(0, 100, lo_exclusive=True), "Importance of the moment; default 1.0.")
Attributes = Annotated[dict[str, Any], Meta(max_length=32,
                                            description="Small free-form context; never logged.")]
Csat = _integer(1, 5)
Ces = _described(_integer(1, 7), "Customer effort score, 1-7, higher = easier.")
Nps = _integer(0, 10)
Sentiment = _number(-1, 1)
Duration = _described(_number(0, MAX_SECONDS), "Time the customer spent, seconds.")
ExpectedDuration = _described(_number(0, MAX_SECONDS, lo_exclusive=True),
                              "Time the customer expected to spend, seconds.")


class TouchpointEvent(Struct, forbid_unknown_fields=True, omit_defaults=True, gc=False):
    """One interaction between a customer and the firm: a moment of truth. One JSON object
    per Kafka record; the record key is the customer_id (UTF-8). At least one outcome signal
    is required; the worst signal decides the moment's quality."""

    event_id: Annotated[Text, Meta(
        description="Unique per producer; a retry reuses it, so the service counts it once.")]
    customer_id: Annotated[Text, Meta(description="The customer; also the Kafka record key.")]
    occurred_at: Annotated[OccurredAt, Meta(
        description="Event time, RFC 3339 with an offset (Z or ±hh:mm).")]
    touchpoint: Annotated[Touchpoint, Meta(
        description="Where the moment happened, e.g. checkout.payment.")]
    channel: Channel | UnsetType = UNSET
    journey_id: Text | UnsetType = UNSET
    journey: JourneyKind | UnsetType = UNSET
    stage: Stage | UnsetType = UNSET
    weight: Weight | UnsetType = UNSET
    recovery_of: Annotated[Text, Meta(
        description="event_id of the failed moment this one tries to repair.")] | UnsetType = UNSET
    team: Text | UnsetType = UNSET
    attributes: Attributes | UnsetType = UNSET
    outcome: Outcome | UnsetType = UNSET
    csat: Csat | UnsetType = UNSET
    ces: Ces | UnsetType = UNSET
    nps: Nps | UnsetType = UNSET
    sentiment: Sentiment | UnsetType = UNSET
    duration_s: Duration | UnsetType = UNSET
    expected_duration_s: ExpectedDuration | UnsetType = UNSET

    @property
    def weight_or_default(self) -> float:
        w = self.weight
        return 1.0 if w is UNSET else w  # type: ignore[return-value]

    @property
    def journey_end(self) -> bool:
        """``attributes.journey_end: true``: the producer marks the journey's last moment."""
        attrs = self.attributes
        return attrs is not UNSET and attrs.get("journey_end") is True  # type: ignore[union-attr]


# Rules across fields, which a field's type cannot say.
SIGNAL_FIELDS = ("outcome", "csat", "ces", "nps", "sentiment", "duration_s")  # one at least
PAIRED = ("duration_s", "expected_duration_s")  # both or neither
REQUIRED = tuple(f.name for f in mi.type_info(TouchpointEvent).fields if f.required)

_NESTABLE = 2 * 1024  # bytes: shorter JSON cannot nest deeper than 1,024 levels
_REMEMBERED = 4096  # per field: the distinct touchpoints, channels, journeys remembered


class _Pattern:
    """A field's pattern, matched as JSON Schema's is (the whole value). A value that
    repeats from event to event (a touchpoint, a channel, a journey kind) is remembered
    once matched, up to :data:`_REMEMBERED` of them."""

    __slots__ = ("known", "name", "regex", "remember")

    def __init__(self, name: str, pattern: str, remember: bool) -> None:
        self.name = name
        self.regex = re.compile(pattern.removeprefix("^").removesuffix("$"))
        self.known: set[str] = set()
        self.remember = remember

    def matches(self, v: str) -> bool:
        if v in self.known:
            return True
        if self.regex.fullmatch(v) is None:
            return False
        if self.remember and len(self.known) < _REMEMBERED:
            self.known.add(v)
        return True


def _str_type(t: mi.Type) -> mi.StrType | None:
    t = t.type if isinstance(t, mi.Metadata) else t
    return t if isinstance(t, mi.StrType) else None


_PATTERNS = tuple(
    _Pattern(f.name, st.pattern, remember=f.name != "occurred_at")
    for f in mi.type_info(TouchpointEvent).fields
    if (st := _str_type(f.type)) is not None and st.pattern is not None)
# msgspec matches a pattern by calling Python's re from C, which costs more than the rest
# of the decoding together; the hot path decodes into this subclass, whose patterned
# fields are plain strings, and matches them itself (remembering those that repeat).
_Decoded = msgspec.defstruct(
    "TouchpointEvent", [(p.name, str) if p.name in REQUIRED else (p.name, str | UnsetType, UNSET)
                        for p in _PATTERNS],
    bases=(TouchpointEvent,), module=__name__)
_DECODER = msgspec.json.Decoder(_Decoded)


class InvalidEvent(Exception):
    """A record that breaks the contract; ``reason`` is a stable machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def decode_event(raw: bytes | None, max_bytes: int) -> tuple[TouchpointEvent, float]:
    """Decode and validate one record value: ``(event, occurred_at epoch seconds)``.

    Raises :class:`InvalidEvent` naming the first problem found.
    """
    if raw is None or len(raw) == 0:
        raise InvalidEvent("empty_record", "the record has no value")
    if len(raw) > max_bytes:
        raise InvalidEvent("too_large", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        event = _DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return _explained(raw)
    for p in _PATTERNS:
        v = getattr(event, p.name)
        if v is not UNSET and not p.matches(v):
            return _explained(raw)
    if event.attributes and len(raw) > _NESTABLE:
        return _explained(raw)  # nesting: orjson's limit is the contract's, not the stack's
    if (event.duration_s is UNSET) != (event.expected_duration_s is UNSET):
        raise InvalidEvent("missing_field", "duration_s and expected_duration_s go together")
    if (event.outcome is UNSET and event.csat is UNSET and event.ces is UNSET
            and event.nps is UNSET and event.sentiment is UNSET and event.duration_s is UNSET):
        raise _no_signal()
    return event, _event_time(event.occurred_at)


def _explained(raw: bytes) -> tuple[TouchpointEvent, float]:
    """The reason a record the decoder refused breaks the contract.

    JSON nested deeper than 1,024 levels is invalid (orjson's limit, whatever the stack
    allows). msgspec's limit is the interpreter's recursion limit instead, less the stack
    in use: so a record it refused for its depth may be valid (it is then built as orjson
    read it), and one with attributes long enough to nest that deep (:data:`_NESTABLE`)
    is read again by orjson even when msgspec took it."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("invalid_json", str(exc)[:200]) from None
    at = validate_event(event)
    return TouchpointEvent(**event), at


def _event_time(occurred_at: str) -> float:
    if occurred_at[-1] == "z":  # RFC 3339 allows it; datetime.fromisoformat does not
        occurred_at = occurred_at[:-1] + "Z"
    try:
        return datetime.fromisoformat(occurred_at).timestamp()
    except ValueError as exc:  # e.g. 2026-02-30: the pattern passes, the calendar does not
        raise InvalidEvent("invalid_timestamp", f"occurred_at: {exc}") from None


def _no_signal() -> InvalidEvent:
    return InvalidEvent("no_outcome_signal", f"one of {', '.join(SIGNAL_FIELDS)}")


# --- the explanation: checks built from the definition ----------------------------------

def _check_string(name: str, t: mi.StrType) -> Callable[[Any], None]:
    lo, hi = t.min_length or 0, t.max_length or sys.maxsize
    regex = None if t.pattern is None else re.compile(t.pattern.removeprefix("^").removesuffix("$"))

    def check(v: Any) -> None:
        if type(v) is not str:
            raise InvalidEvent("wrong_type", f"{name}: expected string")
        if regex is not None:
            if regex.fullmatch(v) is None:
                raise InvalidEvent("invalid_value", f"{name}: does not match {regex.pattern}")
        elif not lo <= len(v) <= hi:
            raise InvalidEvent("invalid_value", f"{name}: length must be {lo}..{hi}")

    return check


def _check_enum(name: str, t: mi.LiteralType) -> Callable[[Any], None]:
    allowed = frozenset(t.values)

    def check(v: Any) -> None:
        if type(v) is not str or v not in allowed:
            raise InvalidEvent("invalid_value", f"{name}: must be one of {sorted(allowed)}")

    return check


def _check_number(name: str, t: mi.UnionType) -> Callable[[Any], None]:
    """``int | float`` with the same bounds; integral floats only when ``multiple_of=1``."""
    f = next(x for x in t.types if isinstance(x, mi.FloatType))
    integral = f.multiple_of == 1
    lo_exclusive = f.gt is not None
    lo = f.gt if lo_exclusive else f.ge
    hi = f.le

    def check(v: Any) -> None:
        if integral:
            if not (type(v) is int or (type(v) is float and v.is_integer())):
                raise InvalidEvent("wrong_type", f"{name}: expected integer")
            if not lo <= v <= hi:
                raise InvalidEvent("out_of_range", f"{name}: must be within {lo}..{hi}")
            return
        if type(v) is not int and type(v) is not float:
            raise InvalidEvent("wrong_type", f"{name}: expected number")
        if v > hi or v < lo or (lo_exclusive and v == lo):
            bound = f"({lo}" if lo_exclusive else f"[{lo}"
            raise InvalidEvent("out_of_range", f"{name}: must be within {bound}, {hi}]")

    return check


def _check_object(name: str, t: mi.DictType) -> Callable[[Any], None]:
    most = t.max_length

    def check(v: Any) -> None:
        if type(v) is not dict:
            raise InvalidEvent("wrong_type", f"{name}: expected object")
        if most is not None and len(v) > most:
            raise InvalidEvent("invalid_value", f"{name}: at most {most} properties")

    return check


def _field_check(name: str, t: mi.Type) -> Callable[[Any], None]:
    if isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.UnionType):  # int | float (UNSET is not a value: msgspec drops it)
        return _check_number(name, t)
    if isinstance(t, mi.StrType):
        return _check_string(name, t)
    if isinstance(t, mi.LiteralType):
        return _check_enum(name, t)
    if isinstance(t, mi.DictType):
        return _check_object(name, t)
    raise TypeError(f"{name}: no check for {t!r}")  # pragma: no cover - a new kind of field


FIELDS: dict[str, Callable[[Any], None]] = {
    f.name: _field_check(f.name, f.type) for f in mi.type_info(TouchpointEvent).fields
}


def validate_event(event: Any) -> float:
    """Check a decoded event (a dict) against schema v1; return its event time in epoch
    seconds. Raises :class:`InvalidEvent` naming the first problem found."""
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
    if (PAIRED[0] in event) != (PAIRED[1] in event):
        raise InvalidEvent("missing_field", "duration_s and expected_duration_s go together")
    if not any(name in event for name in SIGNAL_FIELDS):
        raise _no_signal()
    return _event_time(event["occurred_at"])


def event_from(fields: dict[str, Any]) -> TouchpointEvent:
    """A valid event from its fields (a generator's, a test's): checked as a record is."""
    return decode_event(orjson.dumps(fields), sys.maxsize)[0]


# --- the published JSON Schema -----------------------------------------------------------

def _simplify(prop: dict[str, Any]) -> dict[str, Any]:
    """``int | float`` with the same bounds is JSON Schema's ``number``, and with
    ``multipleOf: 1`` its ``integer`` (which 3.0 is too)."""
    kinds = prop.get("anyOf")
    if not kinds or len(kinds) != 2 or [k.get("type") for k in kinds] != ["integer", "number"]:
        return prop
    i, f = ({k: v for k, v in x.items() if k != "type"} for x in kinds)
    integral = f.pop("multipleOf", None) == 1
    if i != f:
        return prop  # pragma: no cover - no such field today
    rest = {k: v for k, v in prop.items() if k != "anyOf"}
    return {**rest, "type": "integer" if integral else "number", **i}


def json_schema() -> dict[str, Any]:
    """The contract as JSON Schema (draft 2020-12), from :class:`TouchpointEvent`."""
    (body,) = msgspec.json.schema_components([TouchpointEvent])[1].values()
    props = {name: _simplify(p) for name, p in body["properties"].items()}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://mot.example/schemas/touchpoint-event.v1.schema.json",
        "title": "Touchpoint event, schema v1",
        "description": " ".join(TouchpointEvent.__doc__.split()),  # type: ignore[union-attr]
        "type": "object",
        "additionalProperties": False,
        "required": body["required"],
        "anyOf": [{"required": [name]} for name in SIGNAL_FIELDS],
        "dependentRequired": {PAIRED[0]: [PAIRED[1]], PAIRED[1]: [PAIRED[0]]},
        "properties": props,
    }


def json_schema_text() -> str:
    return orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2).decode() + "\n"


if __name__ == "__main__":
    if sys.argv[1:] != ["--json-schema"]:
        sys.exit(f"usage: {REGENERATE}")
    sys.stdout.write(json_schema_text())
