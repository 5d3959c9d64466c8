"""How a table value is encoded: MessagePack carrying its version, and reading v1.

Every table value is a ``msgspec.Struct`` (``array_like``: fields by position) encoded as
the MessagePack array ``[version, value]``. Version 1 of every table was JSON (orjson):
a value that is not such an array is read as v1 and converted by the shape's own
``from_v1``, so a worker upgraded over v1 tables and changelogs carries on, and each
value is written in the current version from its next update.

A shape may also be compressed (``dictionary``): ``[version, zstd(value)]``, the value's
MessagePack compressed by Zstandard with a dictionary that belongs to that version (a
small value compresses well only against a dictionary of what such values hold: field
layout, names, id forms). The dictionary is part of the format: a new one is a new
version, and the reader keeps the old one to read what was written with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import msgspec
import orjson
import zstandard

T = TypeVar("T")
ENVELOPE = 0x92  # MessagePack fixarray of two elements; no JSON text starts with it
ZSTD_LEVEL = 2  # with a dictionary, level 2 is as small as 3 and faster on values this size


class UnreadableValue(ValueError):
    """A stored value of a version this code does not know."""


class Codec(Generic[T]):
    """Encode and decode one table's values (``kind``: a struct type), compressed with
    ``dictionary`` when one is given."""

    def __init__(self, kind: type[T], version: int, from_v1: Callable[[Any], T],
                 dictionary: bytes | None = None) -> None:
        self.kind = kind
        self.version = version
        self._from_v1 = from_v1
        self._encoder = msgspec.msgpack.Encoder()
        self._value = msgspec.msgpack.Decoder(kind)
        self._compress: Callable[[bytes], bytes] | None = None
        self._decompress: Callable[[bytes], bytes] | None = None
        if dictionary is None:
            self._decoder = msgspec.msgpack.Decoder(tuple[int, kind])  # type: ignore[valid-type]
            return
        zdict = zstandard.ZstdCompressionDict(dictionary)
        zdict.precompute_compress(level=ZSTD_LEVEL)
        self._compress = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL, dict_data=zdict, write_checksum=False, write_dict_id=False,
            write_content_size=True).compress
        self._decompress = zstandard.ZstdDecompressor(dict_data=zdict).decompress
        self._decoder = msgspec.msgpack.Decoder(tuple[int, bytes])

    def encode(self, value: T) -> bytes:
        compress = self._compress
        if compress is None:
            return self._encoder.encode((self.version, value))
        return self._encoder.encode((self.version, compress(self._encoder.encode(value))))

    def decode(self, raw: bytes) -> T:
        if raw[:1] != b"\x92":
            return self._from_v1(orjson.loads(raw))
        version, value = self._decoder.decode(raw)
        if version != self.version:
            raise UnreadableValue(f"{self.kind.__name__} version {version}, expected "
                                  f"{self.version}")
        decompress = self._decompress
        if decompress is None:
            return value  # type: ignore[no-any-return]
        return self._value.decode(decompress(value))  # type: ignore[no-any-return]
