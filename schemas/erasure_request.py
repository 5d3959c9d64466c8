"""Validation of erasure requests against ``erasure-request.v1.schema.json``.

Requests are rare, so this is a plain check of the few fields; a test holds it in
agreement with the schema file (which is what producers code against).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from schemas.touchpoint_event import OCCURRED_AT

SCHEMA = "mot.erasure-request/v1"
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}")
FIELDS = frozenset(("schema", "request_id", "customer_id", "requested_at", "requested_by"))
MAX_BYTES = 4096


class InvalidRequest(Exception):
    """A record that breaks the request contract; ``reason`` is a stable code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    """A valid request, as the worker uses it."""

    request_id: str
    customer_id: str
    requested_at: str | None = None
    requested_by: str | None = None


def _text(request: dict[str, Any], name: str) -> str:
    v = request[name]
    if type(v) is not str:
        raise InvalidRequest("wrong_type", f"{name}: expected string")
    if not 0 < len(v) <= 128:
        raise InvalidRequest("invalid_value", f"{name}: length must be 1..128")
    return v


def decode_request(raw: bytes | None) -> ErasureRequest:
    """Decode and validate one request record's value."""
    if not raw:
        raise InvalidRequest("empty_record", "the record has no value")
    if len(raw) > MAX_BYTES:
        raise InvalidRequest("too_large", f"{len(raw)} bytes > limit {MAX_BYTES}")
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest("invalid_json", str(exc)[:200]) from None
    if type(request) is not dict:
        raise InvalidRequest("wrong_type", "the request must be a JSON object")
    unknown = sorted(set(request) - FIELDS)
    if unknown:
        raise InvalidRequest("unknown_field", ", ".join(unknown)[:200])
    for name in ("schema", "request_id", "customer_id"):
        if name not in request:
            raise InvalidRequest("missing_field", name)
    if request["schema"] != SCHEMA:
        raise InvalidRequest("invalid_value", f"schema: expected {SCHEMA}")
    if REQUEST_ID.fullmatch(_text(request, "request_id")) is None:
        raise InvalidRequest("invalid_value", f"request_id: does not match {REQUEST_ID.pattern}")
    _text(request, "customer_id")
    if "requested_by" in request:
        _text(request, "requested_by")
    if "requested_at" in request:
        at = request["requested_at"]
        if type(at) is not str:
            raise InvalidRequest("wrong_type", "requested_at: expected string")
        if OCCURRED_AT.fullmatch(at) is None:
            raise InvalidRequest("invalid_value", "requested_at: not an RFC 3339 date-time")
    return ErasureRequest(request["request_id"], request["customer_id"],
                          request.get("requested_at"), request.get("requested_by"))


def request_record(customer_id: str, request_id: str, requested_at: str | None = None,
                   requested_by: str | None = None) -> tuple[bytes, bytes]:
    """(key, value) of a request as ``mot forget`` publishes it."""
    request: dict[str, Any] = {"schema": SCHEMA, "request_id": request_id,
                               "customer_id": customer_id}
    if requested_at is not None:
        request["requested_at"] = requested_at
    if requested_by is not None:
        request["requested_by"] = requested_by
    return customer_id.encode(), orjson.dumps(request)
