"""A customer's right to be forgotten, as pure functions: the keyed hash that stands for
an erased customer, the receipt of an erasure and the suppression of later events.

Nothing here keeps a customer id: the suppression list and the receipts hold the keyed
hash (HMAC-SHA256 with the operator's key), which only the key's holder can link back to
a given id. Receipt ids are deterministic (UUIDv5 of request id and hash), so a request
handled twice (read again after a crash, or sent twice) yields the same receipt id.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from agents.domain.customer_state import CustomerState
from agents.domain.timestamps import iso

RECEIPT_SCHEMA = "mot.erasure-receipt/v1"
# Fixed forever: changing it would change every receipt id ever issued.
RECEIPT_NAMESPACE = uuid.UUID("0d7f7c1e-5a2b-5c33-8e8d-2f6b1c9a4e70")
# Used only when no key is configured and every broker is on loopback (a laptop): it is
# published here, so a hash made with it protects nothing.
LOCAL_ONLY_KEY = b"mot-local-only-erasure-key; public, never use beyond loopback"

DEAD_LETTER, DROP_COUNTED, ACCEPT = "dead-letter", "drop-counted", "accept"
POLICIES = (DEAD_LETTER, DROP_COUNTED, ACCEPT)
ERASED = "erased"  # the dead-letter reason of a suppressed event

# Suppression entry fields (kept short: one entry per erased customer).
E_REQUEST, E_RECEIPT, E_AT, E_UNTIL, E_REMOVED, E_WORKER = "r", "id", "at", "until", "rm", "w"


class HashKeyMissing(ValueError):
    """No hash key is configured and the brokers are not all on loopback."""


def is_loopback(bootstrap_servers: str) -> bool:
    """Every ``host:port`` of the list is a loopback address (or ``localhost``)."""
    hosts = []
    for item in bootstrap_servers.split(","):
        item = item.strip()
        if not item:
            continue
        item = item.split("://", 1)[-1]
        host = item[1:item.index("]")] if item.startswith("[") else item.rsplit(":", 1)[0]
        hosts.append(host)
    if not hosts:
        return False
    for host in hosts:
        if host == "localhost":
            continue
        try:
            if not ipaddress.ip_address(host).is_loopback:
                return False
        except ValueError:
            return False
    return True


def choose_key(from_file: bytes | None, inline: str, bootstrap_servers: str) -> bytes:
    """The hash key: the key file's content, else the inline key, else (brokers on
    loopback only) :data:`LOCAL_ONLY_KEY`. Surrounding whitespace is not part of it."""
    if from_file is not None and from_file.strip():
        return from_file.strip()
    if inline.strip():
        return inline.strip().encode()
    if is_loopback(bootstrap_servers):
        return LOCAL_ONLY_KEY
    raise HashKeyMissing(
        "MOT_ERASURE_HASH_KEY_FILE or MOT_ERASURE_HASH_KEY is required when the brokers "
        f"({bootstrap_servers}) are not on loopback: erasure receipts, the suppression "
        "list and hashed alerts stand for a customer by a keyed hash")


def customer_hash(key: bytes, customer_id: str) -> str:
    """HMAC-SHA256 of the customer id, hex: what is kept instead of the id."""
    return hmac.new(key, customer_id.encode(), hashlib.sha256).hexdigest()


def receipt_id(request_id: str, chash: str) -> str:
    return str(uuid.uuid5(RECEIPT_NAMESPACE, f"{request_id}\x1f{chash}"))


def suppression_entry(request_id: str, chash: str, erased_at: float, suppression_s: float,
                      removed: Sequence[Mapping[str, Any]], worker: str) -> dict[str, Any]:
    """The suppression list's value for an erased customer (keyed by the hash)."""
    return {E_REQUEST: request_id, E_RECEIPT: receipt_id(request_id, chash), E_AT: erased_at,
            E_UNTIL: erased_at + suppression_s, E_REMOVED: [dict(r) for r in removed],
            E_WORKER: worker}


def is_suppressed(entry: Mapping[str, Any] | None, now: float) -> bool:
    return entry is not None and now < entry[E_UNTIL]


class Receipt(NamedTuple):
    """A receipt document (``erasure-receipt.v1``) and what the agent needs from it."""

    value: dict[str, Any]
    receipt_id: str
    customer_hash: str
    repeat: bool


def is_first_moment(state: CustomerState) -> bool:
    """The state a customer's first counted moment made (so there was none before)."""
    return state.moments == 1


def removed_anything(removed: Sequence[Mapping[str, Any]]) -> bool:
    return any(r["entries"] for r in removed)


def build_receipt(request_id: str, chash: str, entry: Mapping[str, Any],
                  partition: int, policy: str, checked: Sequence[str],
                  retained: Sequence[str], repeat: bool) -> Receipt:
    """The receipt of an erasure, from the suppression entry it wrote (or found: a request
    handled again gives the same receipt, marked ``repeat``)."""
    rid = receipt_id(request_id, chash)
    return Receipt({
        "schema": RECEIPT_SCHEMA,
        "receipt_id": rid,
        "request_id": request_id,
        "customer_hash": chash,
        "hash": "HMAC-SHA256",
        "erased_at": iso(entry[E_AT]),
        "worker": entry[E_WORKER],
        "partition": partition,
        "removed": [dict(r) for r in entry[E_REMOVED]],
        "checked": sorted(checked),
        "retained": sorted(retained),
        "suppressed_until": iso(entry[E_UNTIL]),
        "policy": policy,
        "repeat": repeat,
        # the erasure this request found already done under another request id
        "erased_by_request": entry[E_REQUEST],
    }, rid, chash, repeat)


def removal(store: str, kind: str, entries: int, changelog: str | None = None) -> dict[str, Any]:
    """One line of a receipt's ``removed``: a table (its changelog tombstoned) or a
    worker's in-memory view."""
    out: dict[str, Any] = {"store": store, "kind": kind, "entries": entries}
    if changelog is not None:
        out["changelog"] = changelog
    return out


def holds_id(value: Any, customer_id: str) -> bool:
    """Whether a stored value (decoded JSON, or a table's encoded bytes: MessagePack keeps
    strings as their UTF-8) mentions the id anywhere, as a string."""
    if isinstance(value, str):
        return customer_id in value
    if isinstance(value, bytes | bytearray | memoryview):
        return customer_id.encode() in bytes(value)
    if isinstance(value, Mapping):
        return any(holds_id(k, customer_id) or holds_id(v, customer_id)
                   for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(holds_id(v, customer_id) for v in value)
    return False


def with_customer_hash(alert: dict[str, Any], chash: str) -> dict[str, Any]:
    """An alert whose ``customer_id`` is the keyed hash (``MOT_ALERT_CUSTOMER_ID=hashed``)."""
    out = dict(alert)
    out["customer_id"] = chash
    return out
