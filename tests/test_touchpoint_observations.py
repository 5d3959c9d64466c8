"""Moments batched per touchpoint for the andon: what goes in comes out, in order."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.domain.touchpoint_observations import ObservationBuffer, decode_batch, encode_batch

observation = st.tuples(st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                        st.text(min_size=1, max_size=128), st.integers(-1, 2**31 - 1),
                        st.integers(-1, 2**63 - 1))


@given(st.lists(observation, max_size=50))
def test_a_batch_decodes_to_the_moments_encoded(batch: list) -> None:
    assert list(decode_batch(encode_batch(batch))) == batch


def test_a_truncated_batch_is_refused() -> None:
    value = encode_batch([(1.0, True, "e-1", 0, 7), (2.0, False, "e-2", 1, 8)])
    with pytest.raises((ValueError, struct.error)):
        list(decode_batch(value[:-1]))
    with pytest.raises((ValueError, struct.error)):
        list(decode_batch(value[:5]))


def test_the_buffer_keeps_each_touchpoint_in_counting_order() -> None:
    buf = ObservationBuffer(max_batch=10)
    buf.add("web", 3.0, False, "a", (0, 10))
    buf.add("phone", 1.0, True, "b", (1, 4))
    buf.add("web", 2.0, True, "c")
    assert buf.pending == 3
    batches = dict(buf.drain())
    assert list(decode_batch(batches["web"])) == [(3.0, False, "a", 0, 10),
                                                  (2.0, True, "c", -1, -1)]
    assert list(decode_batch(batches["phone"])) == [(1.0, True, "b", 1, 4)]
    assert buf.pending == 0 and buf.drain() == []


def test_a_full_batch_is_flagged_and_taken_alone() -> None:
    buf = ObservationBuffer(max_batch=2)
    assert buf.add("web", 1.0, False, "a") is False
    buf.add("phone", 1.0, False, "p")
    assert buf.add("web", 2.0, True, "b") is True
    assert list(decode_batch(buf.take("web") or b"")) == [(1.0, False, "a", -1, -1),
                                                          (2.0, True, "b", -1, -1)]
    assert buf.take("web") is None
    assert buf.pending == 1 and [tp for tp, _ in buf.drain()] == ["phone"]


def test_a_batch_of_the_earlier_format_decodes_without_positions() -> None:
    """Records written before an upgrade (no positions) are still judged."""
    old = b"".join(struct.pack("<d?H", at, failed, len(eid)) + eid
                   for at, failed, eid in [(1.5, True, b"e-1"), (2.5, False, b"e-22")])
    assert list(decode_batch(old)) == [(1.5, True, "e-1", -1, -1), (2.5, False, "e-22", -1, -1)]
