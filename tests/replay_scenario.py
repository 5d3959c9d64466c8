"""A file that exercises every alert kind: journeys that go silent, are abandoned or
complete, and a touchpoint that goes red and recovers. Shared by the replay tests and
the real-Kafka acceptance test, with the settings both sides run it under."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

T0 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
TICK_S = 2.0  # event time between two andon events
TICKS = 900
INCIDENT = range(300, 420)  # ticks at which every payment fails (aligned to buckets)
ANDON_TOUCHPOINT = "checkout.payment"

# the andon and the journeys on a small scale, the same for the stream and the replay
SETTINGS = {
    "MOT_TOUCHPOINT_WINDOW_S": "120",
    "MOT_TOUCHPOINT_BUCKET_S": "20",
    "MOT_TOUCHPOINT_MIN_WINDOW_EVENTS": "20",
    "MOT_TOUCHPOINT_MIN_BASELINE_EVENTS": "60",
    "MOT_JOURNEY_TIMEOUT_S": "600",
}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


def ev(eid: str, cid: str, t: float, touchpoint: str, **fields: Any) -> dict[str, Any]:
    return {"event_id": eid, "customer_id": cid, "occurred_at": iso(t),
            "touchpoint": touchpoint, **fields}


def scenario() -> list[dict[str, Any]]:
    """Events in event-time order (as a backfill file would be)."""
    out: list[dict[str, Any]] = []
    for i in range(TICKS):  # the andon's touchpoint: 5 % failures, then an incident
        failed = i in INCIDENT or i % 20 == 7
        out.append(ev(f"pay-{i}", f"shopper-{i % 60:02d}", T0 + i * TICK_S, ANDON_TOUCHPOINT,
                      outcome="failure" if failed else "success"))
    for k in range(20):  # travellers: three moments of a journey, then silence for ever
        t = T0 + 200 + 30 * k + 0.5
        for step, tp in enumerate(("web.search", "web.product-page", "checkout.cart")):
            fields: dict[str, Any] = {"journey_id": f"traveller-{k}-j1", "journey": "purchase"}
            if step == 1 and k % 3 == 0:
                fields["csat"] = 1  # an upstream failure to blame
            else:
                fields["outcome"] = "success"
            out.append(ev(f"trav-{k}-{step}", f"traveller-{k:02d}", t + step * 7.0, tp,
                          **fields))
    for k in range(6):  # quitters: abandon on their second moment
        t = T0 + 150 + 40 * k + 0.25
        j = {"journey_id": f"quitter-{k}-j1", "journey": "support"}
        out.append(ev(f"quit-{k}-0", f"quitter-{k}", t, "support.faq", **j, csat=2))
        out.append(ev(f"quit-{k}-1", f"quitter-{k}", t + 5, "support.chat", **j,
                      outcome="abandoned"))
    for k in range(6):  # finishers: complete their journey
        t = T0 + 400 + 25 * k + 0.75
        j = {"journey_id": f"finisher-{k}-j1", "journey": "onboarding"}
        out.append(ev(f"fin-{k}-0", f"finisher-{k}", t, "onboarding.signup", **j,
                      outcome="success"))
        out.append(ev(f"fin-{k}-1", f"finisher-{k}", t + 5, "onboarding.first-login", **j,
                      outcome="success", attributes={"journey_end": True}))
    for k in range(6):  # returners: a journey goes silent, a second one is still open at the end
        t = T0 + 250 + 20 * k + 0.125
        out.append(ev(f"ret-{k}-0", f"returner-{k}", t, "support.faq",
                      journey_id=f"returner-{k}-j1", csat=4))
        out.append(ev(f"ret-{k}-1", f"returner-{k}", T0 + 1500 + k + 0.125, "support.faq",
                      journey_id=f"returner-{k}-j2", csat=4))
    out.sort(key=lambda e: e["occurred_at"])
    return out


def write(path: Path) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in scenario()))
    return path
