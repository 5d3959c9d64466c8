"""Every tunable of the moments-of-truth model, declared once: name, type, default, unit, meaning.

The domain configs (:class:`~agents.domain.quality.QualityConfig` and the others) take
their defaults from here, ``streams.settings.Settings`` builds its ``MOT_<NAME>`` fields
from here (and from its own runtime declaration), and ``docs/configuration.md`` is
generated from both. So a default is written in exactly one place. This module imports
nothing else from the service, so every part may import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

Value = bool | int | float | str

# The rules version of a model built from the environment alone (docs/rules.md).
ENV_VERSION = "env"

HOUR = 3600.0
DAY = 86400.0

# The units a tunable may be given, with what they mean (the generated doc lists them).
UNITS: Mapping[str, str] = MappingProxyType({
    "s": "seconds",
    "ms": "milliseconds",
    "h": "hours",
    "days": "days",
    "bytes": "bytes",
    "q": "a moment's quality, on the scale −1 (worst) … +1 (best)",
    "score": "a customer's running score (a sum of decayed contributions, unbounded)",
    "×": "a multiple (dimensionless)",
    "fraction": "a share between 0 and 1",
    "count": "a number of things (events, moments, records, journeys, …)",
    "steps": "journey steps (moments of one journey)",
    "switch": "`true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`",
    "name": "a name or one of the listed words",
    "address": "a host name or IP address, or a list of `host:port`",
    "port": "a TCP port",
    "path": "a file or directory path",
    "secret": "a credential: keep it out of logs and images",
    "list": "comma-separated names",
})


@dataclass(frozen=True, slots=True)
class Tunable:
    """One setting an operator may change: read from ``MOT_<NAME>``, documented from here.

    ``rule`` is the validation ``Settings.check()`` applies, in words for the doc
    (``> 0``, ``≥ 1``, ``within [-1, 1]``; bounds may name another variable).
    """

    name: str
    kind: type
    default: Value
    unit: str
    meaning: str
    rule: str = ""

    def __post_init__(self) -> None:
        if type(self.default) is not self.kind:
            raise TypeError(f"{self.name}: default {self.default!r} is not a {self.kind}")

    @property
    def variable(self) -> str:
        """The environment variable that sets it."""
        return "MOT_" + self.name.upper()


@dataclass(frozen=True, slots=True)
class Section:
    """Tunables documented together under one heading."""

    title: str
    tunables: tuple[Tunable, ...]


def merge_sections(sections: Iterable[Section]) -> tuple[Section, ...]:
    """Sections of the same title made one, at the place of the first (runtime and model
    tunables of one topic, declared apart, are documented together)."""
    merged: dict[str, list[Tunable]] = {}
    for section in sections:
        merged.setdefault(section.title, []).extend(section.tunables)
    return tuple(Section(title, tuple(ts)) for title, ts in merged.items())


T = Tunable

MODEL: tuple[Section, ...] = (
    Section("Input limits and time policy", (
        T("max_lateness_s", float, 7 * DAY, "s",
          "how late an event may arrive and still count"),
        T("max_future_skew_s", float, HOUR, "s",
          "how far ahead of the clock an event may be"),
        T("dedupe_window", int, 64, "count",
          "event ids remembered per customer for deduplication (and the events whose "
          "alerts are re-sent after a crash)", "≥ 0"),
        T("recent_moments", int, 5, "count",
          "moments kept per customer as alert context", "≥ 0"),
    )),
    Section("The moments-of-truth model", (
        T("recovery_ratio", float, 12.0, "×",
          "λ: weight of a failure against a success", "> 0"),
        T("half_life_days", float, 30.0, "days",
          "H: half-life of a moment's effect, in event time", "> 0"),
        T("failed_threshold", float, -0.2, "q",
          "q below this is a failed moment", "within [-1, 1]"),
        T("delight_threshold", float, 0.6, "q",
          "q at or above this is a delight", "within [-1, 1]"),
        T("red_quality", float, -0.6, "q",
          "a failed moment at or below this is `red`, else `amber`",
          "within [-1, MOT_FAILED_THRESHOLD]"),
        T("success_quality", float, 0.5, "q",
          "q of `outcome: success`", "within [-1, 1]"),
        T("failure_severity", float, 1.0, "fraction",
          "`outcome: failure`/`abandoned` gives q = −this", "within (0, 1]"),
    )),
    Section("Vicious and virtuous circles", (
        T("vicious_failures", int, 3, "count",
          "failed moments within the window that open a vicious circle", "≥ 1"),
        T("vicious_window_h", float, 72.0, "h",
          "that window, hours of event time", "> 0"),
        T("vicious_red_failures", int, 5, "count",
          "chain length at which a vicious circle escalates to red",
          "≥ MOT_VICIOUS_FAILURES"),
        T("vicious_score_threshold", float, 0.0, "score",
          "a circle opens only with the score below this, and resolves when it is back "
          "at or above it"),
        T("vicious_cooldown_h", float, 24.0, "h",
          "after a resolution, a new circle opens only on failures this long after the "
          "last one's last failure", "≥ 0"),
        T("vicious_memory", int, 16, "count",
          "failed moments remembered per customer for the chain",
          "≥ MOT_VICIOUS_FAILURES"),
        T("virtuous_moments", int, 5, "count",
          "consecutive delights that open a virtuous circle", "≥ 1"),
        T("virtuous_quiet_days", float, 30.0, "days",
          "…with no failed moment in this many days before the newest", "≥ 0"),
    )),
    Section("Journeys and drop-off attribution", (
        T("journey_timeout_s", float, HOUR, "s",
          "a journey silent this long (event time) has dropped", "> 0"),
        T("journey_end_touchpoints", str, "", "list",
          "comma-separated touchpoints that complete a journey (besides "
          "`attributes.journey_end: true`); empty: none"),
        T("journey_max_open", int, 8, "count",
          "open journeys kept per customer", "≥ 1"),
        T("journey_max_moments", int, 16, "count",
          "moments kept per journey", "≥ 2"),
        T("blame_half_life_steps", float, 2.0, "steps",
          "a failure this many steps further upstream gets half the blame", "> 0"),
        T("blame_half_life_s", float, 0.0, "s",
          "…and this many seconds of event time earlier (0 = off)", "≥ 0"),
    )),
    Section("Touchpoint andon", (
        T("touchpoint_window_s", float, 300.0, "s",
          "touchpoint andon: sliding window (event time)"),
        T("touchpoint_bucket_s", float, 30.0, "s",
          "…its bucket size", "within (0, MOT_TOUCHPOINT_WINDOW_S]"),
        T("touchpoint_baseline_alpha", float, 0.02, "fraction",
          "…weight of a bucket in the baseline average", "within (0, 1]"),
        T("touchpoint_min_window_events", int, 30, "count",
          "…moments in the window before judging", "≥ 1"),
        T("touchpoint_min_baseline_events", int, 200, "count",
          "…moments in the baseline before judging", "≥ 1"),
        T("touchpoint_amber_ratio", float, 2.0, "×",
          "…amber at this multiple of the baseline rate",
          "within (1, MOT_TOUCHPOINT_RED_RATIO]"),
        T("touchpoint_red_ratio", float, 4.0, "×",
          "…red at this multiple"),
        T("touchpoint_min_delta", float, 0.05, "fraction",
          "…and only when the rate exceeds the baseline by this much", "within [0, 1]"),
        T("touchpoint_hysteresis", float, 0.8, "fraction",
          "…a level holds until the rate is below this fraction of its entry thresholds",
          "within (0, 1]"),
    )),
)

DEFAULTS: Mapping[str, Value] = MappingProxyType(
    {t.name: t.default for section in MODEL for t in section.tunables})


def default(name: str) -> Any:
    """The declared default of the model tunable ``name`` (a typo fails at import)."""
    return DEFAULTS[name]
