"""How a table value is encoded: MessagePack carrying its version, and reading v1.

Every table value is a ``msgspec.Struct`` (``array_like``: fields by position, no names)
encoded by msgspec's C encoder as the MessagePack array ``[version, value]``, with no
step in Python between the struct and its bytes: the customer state is written on every
event. Version 1 of every table was JSON (orjson): a value that is not such an array is
read as v1 and converted by the shape's own ``from_v1``, so a worker upgraded over v1
tables and changelogs carries on, and each value is written in the current version from
its next update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec
import orjson

T = TypeVar("T")
ENVELOPE = b"\x92"  # MessagePack fixarray of two elements; no JSON text starts with it


class UnreadableValue(ValueError):
    """A stored value of a version this code does not know."""


class Codec(Generic[T]):
    """Encode and decode one table's values (``kind``: a struct type)."""

    def __init__(self, kind: type[T], version: int, from_v1: Callable[[Any], T]) -> None:
        self.kind = kind
        self.version = version
        self._from_v1 = from_v1
        self._encode = msgspec.msgpack.Encoder().encode
        self._decode = msgspec.msgpack.Decoder(tuple[int, kind]).decode  # type: ignore[valid-type]

    def encode(self, value: T) -> bytes:
        return self._encode((self.version, value))

    def decode(self, raw: bytes) -> T:
        if raw[:1] != ENVELOPE:
            return self._from_v1(orjson.loads(raw))
        version, value = self._decode(raw)
        if version != self.version:
            raise UnreadableValue(f"{self.kind.__name__} version {version}, expected "
                                  f"{self.version}")
        return value  # type: ignore[no-any-return]
