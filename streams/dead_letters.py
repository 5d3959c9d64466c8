"""The dead-letter record: the original key and bytes unchanged, why and where in headers.

The one list of header names, for every writer (the scoring agent, ``mot produce
--dead-letter``) and reader (``mot tail --dead-letters``). A record parked by the
worker says where it was read (topic, partition, offset, timestamp); a line refused
by a backfill says which file and line it came from.
"""

from __future__ import annotations

REASON = "mot.reason"  # machine-readable, e.g. invalid_json, too_late, internal_error
DETAIL = "mot.detail"  # human-readable, never the payload
SOURCE_TOPIC = "mot.source.topic"
SOURCE_PARTITION = "mot.source.partition"
SOURCE_OFFSET = "mot.source.offset"
SOURCE_TIMESTAMP = "mot.source.timestamp"
SOURCE_FILE = "mot.source.file"
SOURCE_LINE = "mot.source.line"
CUSTOMER_HASH = "mot.customer_hash"  # an erased customer's keyed hash (docs/privacy.md)
DETAIL_MAX_BYTES = 1024

Headers = list[tuple[str, bytes]]


def _why(reason: str, detail: str) -> Headers:
    return [(REASON, reason.encode()), (DETAIL, detail.encode()[:DETAIL_MAX_BYTES])]


def stream_headers(reason: str, detail: str, topic: str, partition: int, offset: int,
                   timestamp: float | None) -> Headers:
    """Headers of a record the worker parks: the reason, and where it was read."""
    return [*_why(reason, detail),
            (SOURCE_TOPIC, topic.encode()),
            (SOURCE_PARTITION, str(partition).encode()),
            (SOURCE_OFFSET, str(offset).encode()),
            (SOURCE_TIMESTAMP, str(timestamp).encode())]


def file_headers(reason: str, detail: str, file: str, line: int) -> Headers:
    """Headers of a backfill line refused by validation: the reason, and its file and line."""
    return [*_why(reason, detail),
            (SOURCE_FILE, file.encode()),
            (SOURCE_LINE, str(line).encode())]
