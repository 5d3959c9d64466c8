"""Hostile record values, each with the dead-letter reason it must get (``None``: it is a
valid event and must be scored).

Built as bytes, not through a JSON encoder, so they can hold what an encoder never writes:
nesting past the parser's depth limit, records around the size limit, duplicate keys,
invalid UTF-8 and lone surrogates inside strings, and number literals at the edges (huge
integers, ``NaN``/``Infinity``, ``-0``, ``1e309``). The expected reason comes from the
contract (README "Dead letters", the schema's ranges), not from the validator.
"""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import strategies as st

LIMIT = 65536
MAX_DEPTH = 1024  # README: JSON nested deeper than 1024 levels is rejected while parsing
BASE: dict[str, bytes] = {
    "event_id": b'"e-1"', "customer_id": b'"c-1"', "occurred_at": b'"2026-03-01T10:00:00Z"',
    "touchpoint": b'"web.home"', "csat": b"4",
}
Case = tuple[bytes, int, str | None]  # (record value, size limit, expected reason)


def record(fields: list[tuple[bytes, bytes]]) -> bytes:
    """A JSON object from (raw key, raw value) pairs, in order, duplicates kept."""
    return b"{" + b",".join(b'"' + k + b'":' + v for k, v in fields) + b"}"


def base_fields(**replace: bytes) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), replace.pop(k, v)) for k, v in BASE.items()] + [
        (k.encode(), v) for k, v in replace.items()]


# --- nesting ----------------------------------------------------------------------------

@st.composite
def nested(draw: Any) -> Case:
    """``attributes`` holding ``d`` nested containers: the record is 2 + d levels deep."""
    d = draw(st.one_of(st.integers(1, 40), st.integers(MAX_DEPTH - 6, MAX_DEPTH + 4),
                       st.integers(MAX_DEPTH + 5, 3000)))
    shape = draw(st.sampled_from(["list", "object", "alternate"]))
    opens, closes = [], []
    for level in range(d):
        is_list = shape == "list" or (shape == "alternate" and level % 2 == 0)
        opens.append(b"[" if is_list else b'{"k":')
        closes.append(b"]" if is_list else b"}")
    leaf = b"1" if shape == "object" or (shape == "alternate" and d % 2 == 0) else b""
    value = b"".join(opens) + leaf + b"".join(reversed(closes))
    raw = record(base_fields(attributes=b'{"deep":' + value + b"}"))
    return raw, LIMIT, "invalid_json" if 2 + d > MAX_DEPTH else None


# --- size -------------------------------------------------------------------------------

def padded(size: int) -> bytes:
    """A valid event of exactly ``size`` bytes (at least 150), padded in ``attributes``."""
    empty = record(base_fields(attributes=b'{"pad":""}'))
    assert size >= len(empty)
    return record(base_fields(attributes=b'{"pad":"' + b"x" * (size - len(empty)) + b'"}'))


@st.composite
def sized(draw: Any) -> Case:
    """A valid event around the size limit: over it is ``too_large``, whatever the
    content; at or under it, a valid event."""
    limit = draw(st.integers(200, 4000))
    size = draw(st.one_of(st.integers(-3, 3).map(lambda d: limit + d), st.integers(150, 5000)))
    return padded(size), limit, "too_large" if size > limit else None


# --- duplicate keys ---------------------------------------------------------------------

# per field, candidate values and the reason each one alone gets
DUPLICABLE: dict[str, list[tuple[bytes, str | None]]] = {
    "csat": [(b"3", None), (b"9", "out_of_range"), (b'"3"', "wrong_type"),
             (b"2.5", "wrong_type"), (b"null", "wrong_type")],
    "customer_id": [(b'"c-1"', None), (b'""', "invalid_value"), (b"7", "wrong_type")],
    "occurred_at": [(b'"2026-03-01T11:00:00Z"', None), (b'"yesterday"', "invalid_value"),
                    (b'"2026-02-30T10:00:00Z"', "invalid_timestamp")],
    "outcome": [(b'"failure"', None), (b'"meh"', "invalid_value")],
    "attributes": [(b"{}", None), (b"[1]", "wrong_type")],
}


@st.composite
def duplicate_keys(draw: Any) -> Case:
    """A field given 2–4 times. JSON (RFC 8259) leaves duplicate names to the parser; the
    worker's parser keeps the last, as Python's json does for the JSON Schema: the event
    is judged on the last value only."""
    name = draw(st.sampled_from(sorted(DUPLICABLE)))
    values = draw(st.lists(st.sampled_from(DUPLICABLE[name]), min_size=2, max_size=4))
    fields = [f for f in base_fields() if f[0] != name.encode()]
    fields += [(name.encode(), v) for v, _ in values]
    return record(fields), LIMIT, values[-1][1]


# --- invalid UTF-8 ----------------------------------------------------------------------

BAD_UTF8 = [b"\xff", b"\xfe", b"\x80", b"\xc3\x28", b"\xc0\xaf", b"\xe2\x82", b"\xe2\x28\xa1",
            b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80"]
LONE_SURROGATES = [b"\\ud800", b"\\udbff", b"\\udc00", b"\\udfff", b"\\ud83d\\u0041"]
GOOD_UNICODE = ["é", "€", "😀", "\\u00e9", "\\ud83d\\ude00", "\\u0000"]
STRING_FIELDS = ["event_id", "customer_id", "team"]


@st.composite
def bad_utf8(draw: Any) -> Case:
    """Invalid UTF-8 (or a lone surrogate escape) inside a string value or a key:
    ``invalid_json`` (README: not UTF-8), never a partly decoded event."""
    bad = draw(st.sampled_from([*BAD_UTF8, *LONE_SURROGATES]))
    text = draw(st.text(alphabet="abc-019", min_size=0, max_size=10))
    cut = draw(st.integers(0, len(text)))
    value = text[:cut].encode() + bad + text[cut:].encode()
    fields = base_fields(team=b'"t"')
    if draw(st.booleans()):  # in a value
        i = draw(st.sampled_from([0, 1, 5]))  # event_id, customer_id, team
        fields[i] = (fields[i][0], b'"' + value + b'"')
    else:  # in a key
        fields.insert(draw(st.integers(0, len(fields))), (value, b"1"))
    return record(fields), LIMIT, "invalid_json"


@st.composite
def good_unicode(draw: Any) -> Case:
    """Valid UTF-8 and escapes in string values: a valid event."""
    parts = draw(st.lists(st.sampled_from([*GOOD_UNICODE, "a", "-"]), min_size=1,
                          max_size=20))
    name = draw(st.sampled_from(STRING_FIELDS))
    fields = base_fields(**{name: b'"' + "".join(parts).encode() + b'"'})
    return record(fields), LIMIT, None


# --- numbers at the edges ---------------------------------------------------------------

JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
# field -> (integer only, low, high, low excluded): the schema's ranges
NUMERIC: dict[str, tuple[bool, float, float, bool]] = {
    "csat": (True, 1, 5, False), "nps": (True, 0, 10, False),
    "sentiment": (False, -1, 1, False), "weight": (False, 0, 100, True),
}
EDGE_LITERALS = ["NaN", "-NaN", "Infinity", "-Infinity", "+1", "01", ".5", "1.", "0x10",
                 "1e309", "-1e309", "1" + "0" * 400, "-0", "-0.0", "0", "0.0", "1e-400",
                 "-1e-400", "5.0", "1E0", "4.5", "10", "1e2", "100.0", "100.0000000001",
                 "9223372036854775807", "9223372036854775808", "18446744073709551615",
                 "18446744073709551616", "-9223372036854775809"]


def number_reason(name: str, literal: str) -> str | None:
    """The reason a number literal in field ``name`` gets, from JSON's grammar, IEEE
    doubles (a literal beyond them is no number the service can hold: ``invalid_json``)
    and the schema's range for the field."""
    if JSON_NUMBER.fullmatch(literal) is None:
        return "invalid_json"
    value: float
    if re.fullmatch(r"-?[0-9]+", literal) and -(2**63) <= int(literal) < 2**64:
        value = int(literal)
    else:
        try:
            value = float(int(literal)) if re.fullmatch(r"-?[0-9]+", literal) else float(literal)
        except OverflowError:
            return "invalid_json"
        if math.isinf(value):
            return "invalid_json"
    integer_only, lo, hi, lo_excluded = NUMERIC[name]
    if integer_only and not float(value).is_integer():
        return "wrong_type"
    if value < lo or value > hi or (lo_excluded and value == lo):
        return "out_of_range"
    return None


@st.composite
def edge_numbers(draw: Any) -> Case:
    name = draw(st.sampled_from(sorted(NUMERIC)))
    literal = draw(st.one_of(
        st.sampled_from(EDGE_LITERALS),
        st.integers(-(10**40), 10**40).map(str),
        st.integers(0, 400).map(lambda k: "1" + "0" * k),
        st.floats(allow_nan=False, allow_infinity=False).map(repr),
        st.builds(lambda m, e: f"{m}e{e}", st.integers(-9, 9), st.integers(-400, 400)),
    ))
    return record(base_fields(**{name: literal.encode()})), LIMIT, number_reason(name, literal)


def hostile_records() -> st.SearchStrategy[Case]:
    return st.one_of(nested(), sized(), duplicate_keys(), bad_utf8(), good_unicode(),
                     edge_numbers())
