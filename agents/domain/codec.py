"""How a table value is encoded: MessagePack carrying its version, and reading v1.

Every table value is a ``msgspec.Struct`` (``array_like``: fields by position) encoded as
the MessagePack array ``[version, value]``. Version 1 of every table was JSON (orjson):
a value that is not such an array is read as v1 and converted by the shape's own
``from_v1``, so a worker upgraded over v1 tables and changelogs carries on, and each
value is written in the current version from its next update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec
import orjson

T = TypeVar("T")
ENVELOPE = 0x92  # MessagePack fixarray of two elements; no JSON text starts with it


class UnreadableValue(ValueError):
    """A stored value of a version this code does not know."""


def _same(value: Any) -> Any:
    return value


class Codec(Generic[T]):
    """Encode and decode one table's values (``kind``: a struct type). A shape may be
    stored in a packed form of its own (``stored``, with ``pack`` and ``unpack``)."""

    def __init__(self, kind: type[T], version: int, from_v1: Callable[[Any], T],
                 stored: type | None = None, pack: Callable[[T], Any] = _same,
                 unpack: Callable[[Any], T] = _same) -> None:
        self.kind = kind
        self.version = version
        self._from_v1 = from_v1
        self._pack = pack
        self._unpack = unpack
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(tuple[int, stored or kind])  # type: ignore[valid-type]

    def encode(self, value: T) -> bytes:
        return self._encoder.encode((self.version, self._pack(value)))

    def decode(self, raw: bytes) -> T:
        if raw[:1] != b"\x92":
            return self._from_v1(orjson.loads(raw))
        version, value = self._decoder.decode(raw)
        if version != self.version:
            raise UnreadableValue(f"{self.kind.__name__} version {version}, expected "
                                  f"{self.version}")
        return self._unpack(value)
