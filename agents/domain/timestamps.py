"""The one timestamp format of everything the service shows: alerts, pages, the terminal.

RFC 3339 in UTC with milliseconds and a ``Z`` suffix (``2026-06-01T08:00:00.000Z``), the
``date-time`` fields of the alert schemas in ``schemas/``. An alert's ``occurred_at``
copies the event's text as sent (the schemas say so); :func:`iso_text` shows such a
text in the same format, e.g. in ``mot tail``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache


def _format(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@lru_cache(maxsize=1 << 13)
def iso(ts: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds. Cached: an alert shows the times
    of its journey's moments, which the customer's next alerts show again."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def parse(text: str) -> float:
    """An RFC 3339 time (``Z``, ``z`` or an offset) as epoch seconds; ``ValueError`` if not."""
    return datetime.fromisoformat(text.replace("z", "Z")).timestamp()


def iso_text(text: str) -> str:
    """An RFC 3339 time with any offset, in the one format; a text that is not such a time
    (or has no offset, so no instant) is returned as it is."""
    try:
        dt = datetime.fromisoformat(text.replace("z", "Z"))
    except (TypeError, ValueError):
        return text
    return text if dt.tzinfo is None else _format(dt)
