"""Synthetic touchpoint traffic: customers on journeys, where failure begets failure.

Deterministic for a given seed, so the same seed gives the same data set (tests and
the sample file rely on it). As in the seeds, a customer who has just had a failed
moment is more likely to have another (the vicious circle), and more likely to
abandon the journey.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agents.domain.timestamps import iso

# journey kind → ordered touchpoints, with the channel they usually happen on
JOURNEYS: dict[str, list[tuple[str, str]]] = {
    "purchase": [
        ("web.search", "web"),
        ("web.product-page", "web"),
        ("checkout.cart", "web"),
        ("checkout.payment", "web"),
        ("delivery.dispatch", "email"),
        ("delivery.parcel", "store"),
    ],
    "support": [
        ("support.faq", "web"),
        ("support.chat", "chat"),
        ("support.phone", "phone"),
        ("support.resolution", "email"),
    ],
    "onboarding": [
        ("onboarding.signup", "app"),
        ("onboarding.verify-identity", "app"),
        ("onboarding.first-login", "app"),
    ],
}
# touchpoints that fail more often than the rest: the organisation's weak spots
BASE_FAILURE: dict[str, float] = {"checkout.payment": 0.12, "support.phone": 0.10}
DEFAULT_FAILURE = 0.03


@dataclass(slots=True)
class _Journey:
    journey_id: str
    kind: str
    step: int = 0


@dataclass(slots=True)
class _Customer:
    customer_id: str
    recent_failures: float = 0.0
    journey: _Journey | None = None
    journeys: int = 0


@dataclass
class TrafficGenerator:
    """Yields schema-v1 events; ``next_event(t)`` stamps the event at epoch time ``t``."""

    seed: int = 7
    customers: int = 500
    contagion: float = 2.5  # each recent failure multiplies the failure odds by (1 + this)
    _rng: random.Random = field(init=False)
    _people: list[_Customer] = field(init=False)
    _serial: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._people = [_Customer(f"c-{i:06d}") for i in range(self.customers)]

    def _event_id(self) -> str:
        self._serial += 1
        return f"e-{self.seed}-{self._serial:09d}"

    def next_event(self, t: float) -> dict[str, Any]:
        rng = self._rng
        person = self._people[rng.randrange(len(self._people))]
        if person.journey is None:
            person.journeys += 1
            kind = rng.choice(tuple(JOURNEYS))
            person.journey = _Journey(f"{person.customer_id}-j{person.journeys}", kind)
        journey = person.journey
        steps = JOURNEYS[journey.kind]
        touchpoint, channel = steps[journey.step]
        base = BASE_FAILURE.get(touchpoint, DEFAULT_FAILURE)
        p_fail = min(0.9, base * (1.0 + self.contagion * person.recent_failures))
        roll = rng.random()
        event: dict[str, Any] = {
            "event_id": self._event_id(),
            "customer_id": person.customer_id,
            "occurred_at": iso(t),
            "touchpoint": touchpoint,
            "channel": channel,
            "journey_id": journey.journey_id,
            "journey": journey.kind,
            "stage": "first" if journey.step < 2 else "second",
        }
        person.recent_failures *= 0.7
        if roll < p_fail:
            person.recent_failures += 1.0
            if rng.random() < 0.25 + 0.15 * person.recent_failures:
                event["outcome"] = "abandoned"
                person.journey = None
                return event
            kind = rng.randrange(3)
            if kind == 0:
                event["outcome"] = "failure"
            elif kind == 1:
                event["csat"] = rng.choice((1, 2))
            else:
                expected = float(rng.choice((30, 60, 120)))
                event["duration_s"] = round(expected * rng.uniform(1.6, 4.0), 1)
                event["expected_duration_s"] = expected
        elif roll > 0.93:
            event["outcome"] = "delight"
            event["csat"] = 5
        else:
            event["outcome"] = "success"
            if rng.random() < 0.3:
                event["csat"] = rng.choice((3, 4, 4, 5))
        journey.step += 1
        if journey.step >= len(steps):
            event["attributes"] = {"journey_end": True}  # the service sees it complete
            person.journey = None
        return event

    def events(self, start: float, spacing_s: float, count: int) -> Iterator[dict[str, Any]]:
        """``count`` events at event times ``start``, ``start + spacing_s``, …"""
        for i in range(count):
            yield self.next_event(start + i * spacing_s)
