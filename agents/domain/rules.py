"""Rules as versioned data: the model's tunables as one validated document with a version.

A *rules document* (YAML or JSON) holds a ``version``, an optional ``effective_from``
(event time, RFC 3339 in UTC with ``Z``) and any of the model tunables declared in
:mod:`agents.domain.tunables`; a tunable it leaves out keeps the value of the base rules
(the ``MOT_*`` environment, else the declared default). Validation and the JSON Schema
(``schemas/rules.v1.schema.json``) are both derived from that declaration: the type, and
the bounds written in each tunable's ``rule`` (``> 0``, ``≥ MOT_VICIOUS_FAILURES``,
``within (0, 1]``), so a bound is stated once.

When no document is given the environment is the rules, version :data:`ENV_VERSION`.
A :class:`RuleBook` holds every version a worker knows and answers which one applies at
an event time: the one with the latest start at or before it (see ``docs/rules.md``).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from agents.domain.model_config import ModelConfig
from agents.domain.timestamps import iso
from agents.domain.tunables import DEFAULTS, ENV_VERSION, MODEL, UNITS, Tunable, Value

VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$"
SCHEMA_ID = "mot.rules/v1"
TUNABLES: Mapping[str, Tunable] = {t.name: t for s in MODEL for t in s.tunables}
_JSON_TYPE = {bool: "boolean", int: "integer", float: "number", str: "string"}
_BOUND = r"(-?\d+(?:\.\d+)?|MOT_[A-Z_]+)"
_WITHIN = re.compile(rf"^within ([\[(]){_BOUND}, {_BOUND}([\])])$")
_ONE_SIDED = re.compile(rf"^(>|≥) {_BOUND}$")


class InvalidRules(ValueError):
    """A rules document the model cannot use; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"rules.{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Bound:
    """One side of a tunable's valid range: a number or another tunable's name."""

    limit: float | str
    inclusive: bool

    def value(self, values: Mapping[str, Value]) -> float:
        return float(values[self.limit]) if isinstance(self.limit, str) else self.limit  # type: ignore[arg-type]

    def shown(self) -> str:
        return self.limit if isinstance(self.limit, str) else f"{self.limit:g}"


def _limit(text: str) -> float | str:
    return text[4:].lower() if text.startswith("MOT_") else float(text)


def bounds(t: Tunable) -> tuple[Bound | None, Bound | None]:
    """(lower, upper) of a tunable, read from its declared ``rule``."""
    if not t.rule:
        return None, None
    m = _WITHIN.match(t.rule)
    if m:
        return (Bound(_limit(m[2]), m[1] == "["), Bound(_limit(m[3]), m[4] == "]"))
    m = _ONE_SIDED.match(t.rule)
    if m:
        return Bound(_limit(m[2]), m[1] == "≥"), None
    raise ValueError(f"{t.name}: rule {t.rule!r} is not one the rules document can check")


def _range_text(lo: Bound | None, hi: Bound | None) -> str:
    if lo and hi:
        return (f"within {'[' if lo.inclusive else '('}{lo.shown()}, "
                f"{hi.shown()}{']' if hi.inclusive else ')'}")
    if lo:
        return f"{'>=' if lo.inclusive else '>'} {lo.shown()}"
    return "any"


def _typed(name: str, t: Tunable, raw: Any) -> Value:
    if t.kind is bool:
        if type(raw) is not bool:
            raise InvalidRules(name, f"must be true or false, not {raw!r}")
        return raw
    if t.kind is int:
        if type(raw) is not int:
            raise InvalidRules(name, f"must be a whole number ({t.unit}), not {raw!r}")
        return raw
    if t.kind is float:
        if type(raw) not in (int, float) or not math.isfinite(raw):
            raise InvalidRules(name, f"must be a number ({UNITS[t.unit]}), not {raw!r}")
        return float(raw)
    if type(raw) is not str:
        raise InvalidRules(name, f"must be a text, not {raw!r}")
    return raw


def check_values(values: Mapping[str, Value]) -> None:
    """Every bound of every tunable (bounds naming another tunable too), in declared order."""
    for name, t in TUNABLES.items():
        lo, hi = bounds(t)
        v = values[name]
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        bad = ((lo is not None and (v < lo.value(values) if lo.inclusive
                                    else v <= lo.value(values)))
               or (hi is not None and (v > hi.value(values) if hi.inclusive
                                       else v >= hi.value(values))))
        if bad:
            raise InvalidRules(name, f"must be a number {_range_text(lo, hi)}, not {v!r}")


def _version(raw: Any) -> str:
    if type(raw) is int and raw >= 0:
        raw = str(raw)
    if type(raw) is not str or not re.match(VERSION_PATTERN, raw):
        raise InvalidRules("version", "must be a name of letters, digits, '.', '_' or '-' "
                           f"(at most 64, or a whole number), not {raw!r}")
    if raw == ENV_VERSION:
        raise InvalidRules("version", f"{ENV_VERSION!r} is the environment's own version")
    return raw


def _time(raw: Any) -> float:
    if isinstance(raw, datetime):  # YAML reads an unquoted timestamp as one
        if raw.tzinfo is None or raw.utcoffset() != UTC.utcoffset(None):
            raise InvalidRules("effective_from", "must be in UTC with a Z suffix")
        return raw.timestamp()
    if type(raw) is not str or not re.match(TIME_PATTERN, raw):
        raise InvalidRules("effective_from", "must be an RFC 3339 time in UTC with a Z suffix "
                           f"(2026-06-01T08:00:00Z), not {raw!r}")
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise InvalidRules("effective_from", f"{raw!r}: {exc}") from exc


def config_of(values: Mapping[str, Value], version: str) -> ModelConfig:
    """The model the pure functions take, for these tunable values."""
    return replace(ModelConfig.from_settings(SimpleNamespace(**values)), rules_version=version)


@dataclass(frozen=True, slots=True)
class Rules:
    """One validated version of the rules: every tunable's value and the model built from it.

    ``effective_from`` is the event time from which it applies (None: from the start);
    ``applies_from`` is where a :class:`RuleBook` actually starts it (later than
    ``effective_from`` only for a version a worker learnt late, see ``docs/rules.md``).
    """

    version: str
    effective_from: float | None
    values: dict[str, Value]
    config: ModelConfig
    applies_from: float = -math.inf

    def document(self) -> dict[str, Any]:
        """The complete document (every tunable), as ``GET /rules`` shows it."""
        doc: dict[str, Any] = {"version": self.version}
        if self.effective_from is not None:
            doc["effective_from"] = iso(self.effective_from)
        doc.update(self.values)
        return doc

    def same_rules(self, other: Rules) -> bool:
        return (self.values == other.values and self.effective_from == other.effective_from)


def env_rules(values: Mapping[str, Any]) -> Rules:
    """The rules the environment gives (``values``: a ``Settings`` or a mapping)."""
    vals = {n: (values[n] if isinstance(values, Mapping) else getattr(values, n))
            for n in TUNABLES}
    return Rules(ENV_VERSION, None, vals, config_of(vals, ENV_VERSION))


def parse_rules(doc: Any, base: Rules) -> Rules:
    """Validate a decoded document; tunables it leaves out keep ``base``'s values.
    Raises :class:`InvalidRules` naming the first field that is wrong."""
    if not isinstance(doc, Mapping):
        raise InvalidRules("", "a rules document is a mapping of field names to values")
    for name in doc:
        if name not in TUNABLES and name not in ("version", "effective_from", "schema"):
            raise InvalidRules(str(name), "is not a field of the rules (see "
                               "schemas/rules.v1.schema.json)")
    if doc.get("schema", SCHEMA_ID) != SCHEMA_ID:
        raise InvalidRules("schema", f"must be {SCHEMA_ID!r} when given")
    if "version" not in doc:
        raise InvalidRules("version", "is required")
    version = _version(doc["version"])
    effective = _time(doc["effective_from"]) if doc.get("effective_from") is not None else None
    values = dict(base.values)
    for name, raw in doc.items():
        if name in TUNABLES:
            values[name] = _typed(name, TUNABLES[name], raw)
    check_values(values)
    return Rules(version, effective, values, config_of(values, version),
                 -math.inf if effective is None else effective)


def load_document(text: str) -> Any:
    """A YAML (or JSON, a subset of it) text decoded; :class:`InvalidRules` if it is not."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidRules("", f"not YAML or JSON: {exc}") from exc


class RuleBook:
    """Every version known, by where it starts; :meth:`at` is the version of an event time.

    The base (the environment's rules) applies from the start; each other version from
    its ``applies_from``; a version learnt twice with the same content is a no-op.
    """

    __slots__ = ("_by_version", "_order", "_starts", "base")

    def __init__(self, base: Rules, versions: tuple[Rules, ...] = ()) -> None:
        self.base = base
        self._by_version: dict[str, Rules] = {base.version: base}
        self._order: list[Rules] = [base]
        self._starts: list[float] = [-math.inf]
        for r in versions:
            self.add(r)

    def add(self, rules: Rules) -> bool:
        """Know one more version; False if it was known already (same content)."""
        known = self._by_version.get(rules.version)
        if known is not None:
            if known.same_rules(rules):
                return False
            raise InvalidRules("version", f"{rules.version!r} is already known with other "
                               "values (a version is never changed: publish a new one)")
        self._by_version[rules.version] = rules
        i = bisect_right(self._starts, rules.applies_from)
        self._starts.insert(i, rules.applies_from)
        self._order.insert(i, rules)
        return True

    def at(self, t: float) -> Rules:
        """The version that applies to an event at event time ``t``."""
        return self._order[bisect_right(self._starts, t) - 1]

    def get(self, version: str) -> Rules | None:
        return self._by_version.get(version)

    def config_of(self, version: str | None, fallback: ModelConfig) -> ModelConfig:
        """The model of a kept version (an alert re-sent as first computed); a version no
        longer known keeps its name on ``fallback``'s figures."""
        if version is None:
            return fallback
        known = self._by_version.get(version)
        if known is not None:
            return known.config
        return replace(fallback, rules_version=version)

    @property
    def latest(self) -> Rules:
        """The version with the latest start (what applies to new events now)."""
        return self._order[-1]

    def versions(self) -> list[Rules]:
        return list(self._order)


def rules_schema() -> dict[str, Any]:
    """``schemas/rules.v1.schema.json``, generated from the tunables' declaration."""
    props: dict[str, Any] = {
        "schema": {"const": SCHEMA_ID, "description": "optional: the document's format"},
        "version": {
            "description": "the name of this version of the rules, carried by every alert "
                           f"computed under it as rules_version; {ENV_VERSION!r} is reserved "
                           "for the rules the environment gives",
            "oneOf": [{"type": "string", "pattern": VERSION_PATTERN,
                       "not": {"const": ENV_VERSION}},
                      {"type": "integer", "minimum": 0}],
        },
        "effective_from": {
            "description": "event time from which the version applies (RFC 3339, UTC, Z); "
                           "absent: from the start (mot rules publish sets it)",
            "type": "string", "format": "date-time", "pattern": TIME_PATTERN,
        },
    }
    for name, t in TUNABLES.items():
        p: dict[str, Any] = {"type": _JSON_TYPE[t.kind], "default": DEFAULTS[name],
                             "description": f"{t.meaning} ({UNITS[t.unit]}; "
                                            f"MOT_{name.upper()})"}
        lo, hi = bounds(t)
        for bound, incl, excl in ((lo, "minimum", "exclusiveMinimum"),
                                  (hi, "maximum", "exclusiveMaximum")):
            if bound is None:
                continue
            if isinstance(bound.limit, str):
                p["description"] += f"; valid: {_range_text(lo, hi)}"
            else:
                p[incl if bound.inclusive else excl] = (
                    int(bound.limit) if t.kind is int else bound.limit)
        props[name] = p
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://mot.example/schemas/rules.v1.schema.json",
        "title": "Rules document (mot.rules/v1)",
        "description": "Every tunable of the moments-of-truth model, as one versioned "
                       "document (docs/rules.md). Generated from agents/domain/tunables.py "
                       "by `python -m agents.domain.rules --schema`; do not edit.",
        "type": "object",
        "required": ["version"],
        "additionalProperties": False,
        "properties": props,
    }


if __name__ == "__main__":
    import json
    import sys

    if sys.argv[1:] != ["--schema"]:
        sys.exit("usage: python -m agents.domain.rules --schema > schemas/rules.v1.schema.json")
    sys.stdout.write(json.dumps(rules_schema(), indent=2, ensure_ascii=False) + "\n")


@dataclass(frozen=True, slots=True)
class Learnt:
    """What one record of the rules topic did to a worker's :class:`RuleBook`."""

    rules: Rules | None = None  # the version now known (None: refused, or known already)
    refused: str | None = None  # why it was ignored: "invalid" or "conflict"
    detail: str = ""
    late: bool = False  # it arrived after events it would have applied to were scored


def learn(book: RuleBook, raw: bytes | None, scored_up_to: float) -> Learnt:
    """Apply one record of the rules topic to ``book`` (in place), as every worker does.

    An invalid document, or a known version with other values, is refused: the book is
    unchanged. A version whose ``effective_from`` is at or before ``scored_up_to`` (the
    latest event time this worker has scored) is *late*: it applies from just after
    ``scored_up_to`` instead, so no event already scored changes version (docs/rules.md).
    """
    try:
        if not raw:
            raise InvalidRules("", "an empty record is not a rules document")
        rules = parse_rules(load_document(raw.decode("utf-8")), book.base)
    except UnicodeDecodeError as exc:
        return Learnt(refused="invalid", detail=f"rules: not UTF-8 ({exc.reason})")
    except InvalidRules as exc:
        return Learnt(refused="invalid", detail=str(exc))
    known = book.get(rules.version)
    if known is not None:
        if known.same_rules(rules):
            return Learnt()
        return Learnt(refused="conflict", detail=f"rules.version: {rules.version!r} is "
                      "already known with other values; the first one is kept")
    late = rules.applies_from <= scored_up_to
    if late:
        rules = replace(rules, applies_from=math.nextafter(scored_up_to, math.inf))
    book.add(rules)
    return Learnt(rules=rules, late=late)
