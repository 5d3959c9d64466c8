"""Deterministic alert ids: the same input always yields the same id.

Consumers deduplicate on ``alert_id``; a worker that reprocesses an event after a
crash re-sends an alert with the id it had the first time.

The id is the UUIDv5 (RFC 4122) of the kind and its parts, built here from the SHA-1
digest directly: ``uuid.uuid5`` makes a ``UUID`` object per call, which cost more than
the rest of a drop-off alert's id. ``tests/test_alert_ids_golden.py`` holds the two equal.
"""

from __future__ import annotations

import uuid
from hashlib import sha1

# Fixed forever: changing it would change every alert id ever issued.
ALERT_NAMESPACE = uuid.UUID("6f1c2a8e-3b7d-5e41-9a0c-4d2b8e7f1a35")
_NAMESPACE_BYTES = ALERT_NAMESPACE.bytes


def alert_id(kind: str, *parts: str) -> str:
    """UUIDv5 of the kind and its identifying parts: ``alert_id("failed-moment", cid, eid)``."""
    name = "\x1f".join((kind, *parts)).encode()
    d = bytearray(sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    d[6] = (d[6] & 0x0F) | 0x50  # version 5
    d[8] = (d[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = d.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
