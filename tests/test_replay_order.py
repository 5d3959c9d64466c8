"""How a replay orders its lines: by event time, keyed by customer, from two fields only."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from streams.offline.replay import UNORDERED, order_key
from tests.test_replay import ev


@pytest.mark.parametrize("line", [
    b"this is not json", b"[1, 2]", b'"text"', b"{}",
    b'{"customer_id": "alice"}',  # no event time
    b'{"occurred_at": "2026-11-01T10:00:00Z"}',  # no customer
    b'{"occurred_at": 1796205600, "customer_id": "alice"}',  # not a string
    b'{"occurred_at": "2026-11-01T10:00:00Z", "customer_id": 7}',
    b'{"occurred_at": "", "customer_id": "alice"}',
    b'{"occurred_at": "yesterday", "customer_id": "alice"}',
    b'{"occurred_at": "2026-11-01T10:00:00Z", "customer_id": "\\ud800"}',  # lone surrogate
    b'{"occurred_at": "2026-11-01T10:00:00Z", "customer_id": "alice", "a": '
    + b"[" * 5000 + b"]" * 5000 + b"}",
])
def test_a_line_without_a_usable_time_and_customer_is_ordered_first(line: bytes) -> None:
    """Such a line is not held in the reorder buffer: it is rejected (reported) at once."""
    assert order_key(line) == (UNORDERED, None)


def test_a_line_is_ordered_by_its_event_time_and_keyed_by_its_customer() -> None:
    line = orjson.dumps(ev("a1", "alice", "2026-11-01T10:00:00.250z", csat=4,
                           attributes={"deep": [[{"x": 1}]]}))
    assert order_key(line) == (datetime(2026, 11, 1, 10, 0, 0, 250000, tzinfo=UTC).timestamp(),
                               b"alice")
