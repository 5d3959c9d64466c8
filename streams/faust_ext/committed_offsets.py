"""The consumer's last committed offset per partition, for the lag metric.

Changes: reads ``Consumer._committed_offset`` (private in faust-streaming), the offsets
this worker committed itself.

Why: the public ``Consumer.committed()`` asks the broker, a round trip per scrape for a
figure the worker already holds. Upstream candidate: a public read-only view of the
committed offsets.

Checked against faust-streaming 0.15.3 (``CHECKED_FAUST_VERSION``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def committed_offsets(consumer: Any, partitions: Iterable[Any]) -> dict[Any, int | None]:
    """The offset the worker last committed for each partition, ``None`` when none yet."""
    committed = consumer._committed_offset
    return {tp: committed.get(tp) for tp in partitions}
