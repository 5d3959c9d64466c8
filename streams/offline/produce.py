"""Publishing a JSON Lines file to the input topic: the backfill path.

The file is validated first, line by line, with the worker's own decoder. By default an
invalid line refuses the whole file (nothing is published, every bad line is reported);
with ``dead_letter`` the invalid lines go to the dead-letter topic unchanged, with the
reason and their line in headers, and the valid ones to the input topic. Records are
keyed by ``customer_id`` and sent in file order by an idempotent producer, so each
customer's events reach the worker in the order of the file.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from schemas.touchpoint_event import InvalidEvent, decode_event
from streams.dead_letters import file_headers
from streams.offline.jsonl import open_lines
from streams.offline.progress import Progress
from streams.settings import Settings


@dataclass(slots=True)
class ProduceResult:
    lines: int = 0
    published: int = 0
    dead_lettered: int = 0
    invalid_by_reason: dict[str, int] = field(default_factory=dict)
    refused: bool = False
    seconds: float = 0.0

    @property
    def invalid(self) -> int:
        return sum(self.invalid_by_reason.values())


def check_line(raw: bytes, max_bytes: int) -> tuple[str | None, tuple[str, str] | None]:
    """``(customer_id, None)`` for a valid event, ``(customer_id or None, (reason, detail))``
    for an invalid one."""
    try:
        event, _ = decode_event(raw, max_bytes)
    except InvalidEvent as exc:
        cid = None
        try:
            event = orjson.loads(raw)  # not a valid event, but it may name its customer
            if isinstance(event, dict) and isinstance(event.get("customer_id"), str):
                cid = event["customer_id"]
        except orjson.JSONDecodeError:
            pass
        return cid, (exc.reason, exc.detail)
    return event.customer_id, None


def validate_file(path: str, max_bytes: int, on_invalid: Callable[[int, str, str], None]
                  ) -> ProduceResult:
    """First pass: count lines and report every invalid one."""
    result = ProduceResult()
    source = open_lines(path)
    try:
        with Progress("validating", source.total_bytes) as bar:
            for lineno, raw in source.lines(max_bytes):
                result.lines += 1
                _, problem = check_line(raw, max_bytes)
                if problem is not None:
                    reason, detail = problem
                    result.invalid_by_reason[reason] = result.invalid_by_reason.get(reason, 0) + 1
                    on_invalid(lineno, reason, detail)
                if not lineno & 0x3FF:
                    bar.update(source.position)
    finally:
        source.close()
    return result


def spool_stdin() -> Path:
    """Standard input copied to a temporary file, so it can be read twice."""
    fd, name = tempfile.mkstemp(prefix="mot-produce-", suffix=".jsonl")
    with open(fd, "wb") as out:
        shutil.copyfileobj(sys.stdin.buffer, out, 1 << 20)
    return Path(name)


async def publish(path: str, s: Settings, result: ProduceResult, rate: float,
                  dead_letter: bool, label: str) -> None:
    """Second pass: send valid lines keyed by customer (invalid ones to the dead-letter
    topic when asked); ``rate`` events per second, 0 = as fast as the broker takes them."""
    from aiokafka import AIOKafkaProducer

    from streams.kafka.admin import ensure_topics
    from streams.kafka.clients import client_options

    await ensure_topics(s, [s.topic_events, s.topic_dead_letter])
    producer = AIOKafkaProducer(**client_options(s), acks="all", enable_idempotence=True,
                                linger_ms=5)
    await producer.start()
    source = open_lines(path)
    started = time.monotonic()
    sent = 0
    try:
        with Progress("publishing", source.total_bytes) as bar:
            for lineno, raw in source.lines(s.max_record_bytes):
                cid, problem = check_line(raw, s.max_record_bytes)
                key = cid.encode() if cid is not None else None
                if problem is None:
                    await producer.send(s.topic_events, raw, key=key)
                    result.published += 1
                elif dead_letter:
                    reason, detail = problem
                    await producer.send(s.topic_dead_letter, raw, key=key,
                                        headers=file_headers(reason, detail, label, lineno))
                    result.dead_lettered += 1
                else:
                    continue
                sent += 1
                if rate > 0:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                if not sent & 0xFF:
                    bar.update(source.position)
            await producer.flush()
            bar.update(source.position)
    finally:
        source.close()
        await producer.stop()


def produce_file(path: str, s: Settings, rate: float, dead_letter: bool,
                 on_invalid: Callable[[int, str, str], None]) -> ProduceResult:
    """Validate, then publish unless refused. ``-`` reads standard input."""
    spooled = spool_stdin() if path == "-" else None
    target = str(spooled) if spooled is not None else path
    started = time.monotonic()
    try:
        result = validate_file(target, s.max_record_bytes, on_invalid)
        if result.invalid and not dead_letter:
            result.refused = True
        else:
            label = "<stdin>" if spooled is not None else path
            asyncio.run(publish(target, s, result, rate, dead_letter, label))
    finally:
        if spooled is not None:
            spooled.unlink(missing_ok=True)
    result.seconds = time.monotonic() - started
    return result
