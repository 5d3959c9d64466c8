"""One-line, human-readable renderings of alerts and dead-letter records for ``mot tail``.

Times are shown in the one format of the alerts (:mod:`agents.domain.timestamps`): an
alert's ``occurred_at`` is the event's text as sent, whatever offset it was sent with.
"""

from __future__ import annotations

from typing import Any

import orjson

from agents.domain.timestamps import iso_text
from streams import dead_letters as dl

COLOURS = {"red": "\033[31m", "amber": "\033[33m", "green": "\033[32m"}
RESET = "\033[0m"


def render_alert(alert: dict[str, Any], colour: bool = False) -> str:
    severity = str(alert.get("severity", "?"))
    sev = severity.upper().ljust(5)
    if colour and severity in COLOURS:
        sev = f"{COLOURS[severity]}{sev}{RESET}"
    occurred_at = alert.get("occurred_at")
    when = iso_text(occurred_at) if isinstance(occurred_at, str) else "?"
    head = f"{when}  {sev} {alert.get('kind', '?'):<14}"
    who = alert.get("customer_id") or alert.get("touchpoint") or "?"
    parts = [head, f"customer={who}"]
    if alert.get("kind") == "failed-moment":
        reason = alert.get("reason", {})
        parts.append(f"at {alert.get('touchpoint')}")
        q = reason.get("quality", 0.0)
        parts.append(f"{reason.get('signal')}={reason.get('value')} (q {q:+.2f})")
        parts.append(f"score {alert.get('score_before'):+.2f} -> {alert.get('score_after'):+.2f}")
    elif "lifecycle" in alert:  # circle lifecycle events
        parts.append(f"{alert['lifecycle']} #{alert.get('circle')}")
        if "failures" in alert:
            parts.append(f"failures={alert['failures']}  score {alert.get('score', 0.0):+.2f}")
        parts.append(f"by {alert.get('event_id')}")
    elif alert.get("kind") == "drop-off":
        culprit = alert.get("culprit", {})
        parts.append(f"{alert.get('trigger')} at {alert.get('touchpoint')}")
        parts.append(f"culprit {culprit.get('touchpoint')} ({culprit.get('blame', 0.0):.0%})")
    elif alert.get("kind") == "touchpoint-status":
        parts[1] = f"touchpoint={alert.get('touchpoint')}"
        window, base = alert.get("window", {}), alert.get("baseline", {})
        parts.append(f"{alert.get('previous_status')} -> {alert.get('status')}")
        parts.append(f"failure rate {window.get('failure_rate', 0.0):.1%}"
                     f" vs baseline {base.get('failure_rate', 0.0):.1%}")
    elif "state" in alert:
        parts.append(f"state={alert['state']}")
    parts.append(f"id={str(alert.get('alert_id', '?'))[:8]}")
    return "  ".join(parts)


def render_dead_letter(value: bytes, headers: dict[str, bytes]) -> str:
    def h(name: str) -> str:
        return headers.get(name, b"?").decode(errors="replace")

    preview = value[:80].decode(errors="replace").replace("\n", " ")
    return (
        f"DEAD-LETTER reason={h(dl.REASON)} detail={h(dl.DETAIL)!r} "
        f"source={h(dl.SOURCE_TOPIC)}[{h(dl.SOURCE_PARTITION)}]@{h(dl.SOURCE_OFFSET)} "
        f"bytes={len(value)} value={preview!r}"
    )


def render_record(topic: str, value: bytes, headers: dict[str, bytes], dead_letter_topic: str,
                  raw: bool, colour: bool = False) -> str:
    """What ``mot tail`` prints for one record (raw JSON with ``--json``)."""
    if topic == dead_letter_topic:
        if raw:
            return orjson.dumps({
                "topic": topic,
                "headers": {k: v.decode(errors="replace") for k, v in headers.items()},
                "value": value.decode(errors="replace"),
            }).decode()
        return render_dead_letter(value, headers)
    if raw:
        return value.decode(errors="replace")
    try:
        return render_alert(orjson.loads(value), colour)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return f"{topic}: unreadable alert ({len(value)} bytes)"
