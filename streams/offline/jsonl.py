"""JSON Lines files in and out: plain or gzip, a path or standard input, bounded lines.

Reading never holds more than one line, and a line is cut at ``max_bytes + 1`` bytes
(the rest is skipped) so a runaway line cannot exhaust memory: the domain then rejects
it as ``too_large``, like an oversized Kafka record.
"""

from __future__ import annotations

import gzip
import io
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

GZIP_MAGIC = b"\x1f\x8b"
CHUNK = 1 << 16


@dataclass
class LineSource:
    """Numbered lines of a JSON Lines input, with how far the reader has got in bytes
    (of the file as stored, compressed or not) for a progress bar."""

    name: str
    raw: IO[bytes]
    total_bytes: int | None  # None for a pipe: progress without an end
    read_bytes: int = 0  # bytes of lines handed out so far (decompressed)
    _text: IO[bytes] = field(init=False)

    def __post_init__(self) -> None:
        peek = self.raw.peek(2)[:2] if hasattr(self.raw, "peek") else b""
        self._text = gzip.GzipFile(fileobj=self.raw, mode="rb") if peek == GZIP_MAGIC \
            else self.raw

    @property
    def position(self) -> int:
        try:
            return self.raw.tell()
        except (OSError, ValueError):
            return 0

    def position_of(self, done_bytes: int) -> int:
        """Where in the stored file the reader would be after ``done_bytes`` of lines
        (a consumer that buffers ahead, or a compressed file, is behind ``position``)."""
        if self.read_bytes <= 0:
            return 0
        return int(self.position * min(1.0, done_bytes / self.read_bytes))

    def lines(self, max_bytes: int) -> Iterator[tuple[int, bytes]]:
        """``(line number, bytes without the line end)``; blank lines are not records
        and are skipped (their numbers still count)."""
        limit = max_bytes + 1
        lineno = 0
        read = self._text.readline
        while True:
            line = read(limit + 2)
            if not line:
                return
            lineno += 1
            self.read_bytes += len(line)
            if not line.endswith(b"\n") and len(line) > limit:
                while True:  # skip the rest of an oversized line without keeping it
                    rest = read(CHUNK)
                    self.read_bytes += len(rest)
                    if not rest or rest.endswith(b"\n"):
                        break
                line = line[:limit]
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield lineno, line

    def close(self) -> None:
        if self._text is not self.raw:
            self._text.close()
        if self.raw is not getattr(sys.stdin, "buffer", None):
            self.raw.close()


def open_lines(path: str) -> LineSource:
    """Open ``path`` (``-`` = standard input); gzip is recognised by its magic bytes."""
    if path == "-":
        raw = sys.stdin.buffer
        if not isinstance(raw, io.BufferedReader):
            raw = io.BufferedReader(raw)  # type: ignore[arg-type]
        return LineSource("<stdin>", raw, None)
    p = Path(path)
    return LineSource(str(p), open(p, "rb"), os.path.getsize(p))


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write records one per line; ``.gz`` paths are gzip with no name or time in the
    header, so the same records always give the same bytes. Returns the count."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(p, "wb") as f:
        out: IO[bytes] = gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0,
                                       compresslevel=9) if p.suffix == ".gz" else f
        try:
            for record in records:
                out.write(orjson.dumps(record) + b"\n")
                n += 1
        finally:
            if out is not f:
                out.close()
    return n
