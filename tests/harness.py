"""Test harness for real-Kafka tests: worker processes, plain-client produce and consume.

Everything here talks to Kafka with plain aiokafka, never through the service's own
code, so a test sees what any downstream consumer would see.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from agents.domain.customer_state import decode_state

REPO = Path(__file__).resolve().parent.parent


def raw_http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send the bytes as they are to 127.0.0.1:``port`` (no client normalising the path or
    the headers); the status, headers and body of the answer, read until the server closes
    the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_env(bootstrap: str, data_dir: Path, **overrides: Any) -> dict[str, str]:
    """Environment for a worker with its own app id and topics, so tests never share state."""
    tag = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOT_")}
    env.update(
        MOT_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        MOT_APP_ID=f"mot-test-{tag}",
        MOT_TOPIC_EVENTS=f"t-{tag}.touchpoints",
        MOT_TOPIC_DEAD_LETTER=f"t-{tag}.dead-letter",
        MOT_TOPIC_ALERTS_FAILED_MOMENT=f"t-{tag}.alerts.failed-moment",
        MOT_TOPIC_ALERTS_CIRCLES=f"t-{tag}.alerts.circles",
        MOT_TOPIC_ALERTS_DROP_OFF=f"t-{tag}.alerts.drop-off",
        MOT_TOPIC_ALERTS_TOUCHPOINT_STATUS=f"t-{tag}.alerts.touchpoint-status",
        MOT_TOPIC_ERASURE_REQUESTS=f"t-{tag}.erasure-requests",
        MOT_TOPIC_ERASURE_RECEIPTS=f"t-{tag}.erasure-receipts",
        MOT_TOPIC_RULES=f"t-{tag}.rules",
        MOT_PARTITIONS="2",
        MOT_STORE="rocksdb://",
        MOT_DATA_DIR=str(data_dir),
        MOT_WEB_PORT=str(free_port()),
        MOT_LOG_LEVEL="info",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def isolated_env(kafka: str, data_dir: Path) -> dict[str, str]:
    """:func:`service_env`, with every alert topic of the settings made private."""
    from streams.settings import Settings

    env = service_env(kafka, data_dir)
    for f in dataclass_fields(Settings):
        var = "MOT_" + f.name.upper()
        if f.name.startswith("topic_alerts_") and var not in env:
            env[var] = f"{env['MOT_APP_ID']}.{f.name}"
    return env


def mot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    """A ``mot`` command run from the repository with ``env``, its output captured."""
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=REPO, env=env,
                          capture_output=True, timeout=300)


@dataclass
class WorkerProcess:
    """A real ``python -m streams.worker`` process, stopped by :meth:`stop`."""

    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.env['MOT_WEB_PORT']}"

    def start(self, timeout: float = 90.0) -> WorkerProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115  (kept open for the process' life)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.worker"], cwd=REPO, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise TimeoutError(f"worker not healthy after {timeout}s:\n{self.log_tail()}")

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def metrics(self) -> str:
        return self.get("/metrics")[1].decode()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(10)

    def log_tail(self, n: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return "(no log)"


def metric_value(metrics_text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus text format; 0.0 when absent."""
    wanted = f"{name}{{{labels}}}" if labels else name
    for line in metrics_text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes]],
                  headers: list[tuple[str, bytes]] | None = None) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    n = 0
    try:
        for key, value in records:
            await producer.send(topic, value, key=key, headers=headers)
            n += 1
        await producer.flush()
    finally:
        await producer.stop()
    return n


def event_record(event: dict[str, Any]) -> tuple[bytes, bytes]:
    return event["customer_id"].encode(), orjson.dumps(event)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]

    def json(self) -> Any:
        return orjson.loads(self.value)


async def consume(bootstrap: str, topic: str, *, expect: int | None = None,
                  timeout: float = 30.0, idle: float = 2.0) -> list[Record]:
    """Read ``topic`` from the beginning until ``expect`` records arrived (then ``idle``
    seconds more, to catch extras), or until ``timeout``."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    out: list[Record] = []
    try:
        deadline = time.monotonic() + timeout
        parts: set[int] | None = None
        while parts is None and time.monotonic() < deadline:
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                parts = None
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.2)
        if parts is None:
            return out
        consumer.assign([TopicPartition(topic, p) for p in sorted(parts)])
        done_at: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for tp_records in batch.values():
                for r in tp_records:
                    out.append(Record(r.topic, r.partition, r.offset, r.key, r.value or b"",
                                      dict(r.headers or ())))
            if expect is not None and len(out) >= expect:
                done_at = done_at or time.monotonic() + idle
                if time.monotonic() >= done_at:
                    break
    finally:
        await consumer.stop()
    return out


async def latest_by_key(bootstrap: str, topic: str, timeout: float = 10.0,
                        decode: Callable[[bytes], Any] = decode_state) -> dict[Any, Any]:
    """The last value per key of a Faust table's changelog (JSON keys, values decoded by
    the table's codec, the customer state's unless told): what the table holds."""
    records = await consume(bootstrap, topic, timeout=timeout, idle=0)
    state: dict[Any, Any] = {}
    for r in records:
        if r.key is not None:
            state[orjson.loads(r.key)] = decode(r.value) if r.value else None
    return state
