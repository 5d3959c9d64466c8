"""streams.kafka.local_kafka: the repo's own real Kafka broker.

The ``kafka``-marked tests start a genuine broker JVM (a few seconds each);
the others need neither java nor mvn.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path

import pytest

from streams.kafka import local_kafka
from streams.kafka.local_kafka import KafkaToolchainMissing, LocalKafka, kafka_classpath


def _group_alive(pgid: int) -> list[int]:
    """PIDs still in process group ``pgid`` (the broker runs in its own)."""
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) == pgid:
                alive.append(int(entry.name))
        except (ProcessLookupError, PermissionError):
            continue
    return alive


def _can_bind(port: int) -> bool:
    # SO_REUSEADDR like Kafka's own acceptor: TIME_WAIT leftovers don't count.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def _round_trip(bootstrap: str) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    topic = f"local-kafka-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait(topic, f"m{i}".encode(), key=b"k")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"g-{topic}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    received: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(received) < 3:
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    received.extend(r.value for r in records if r.value is not None)
        await consumer.commit()
    finally:
        await consumer.stop()
    return received


@pytest.mark.kafka
def test_round_trip_then_stop_leaves_nothing_behind(tmp_path: Path) -> None:
    log_file = tmp_path / "broker.log"
    kafka = LocalKafka(log_file=log_file)
    try:
        bootstrap = kafka.start()
        assert bootstrap == kafka.bootstrap_servers
        assert bootstrap.startswith("127.0.0.1:")
        assert kafka.pid is not None and kafka.controller_port is not None
        pid, port, data_dir = kafka.pid, kafka.port, kafka.data_dir
        assert port is not None and data_dir is not None and data_dir.is_dir()

        assert asyncio.run(_round_trip(bootstrap)) == [b"m0", b"m1", b"m2"]
    finally:
        kafka.stop()

    assert not kafka.is_running()
    assert _group_alive(pid) == [], "broker JVM (or a child) survived stop()"
    assert not Path(f"/proc/{pid}").exists()
    assert _can_bind(port), f"broker port {port} still in use after stop()"
    assert _can_bind(kafka.controller_port)
    assert not data_dir.exists(), "the temp data dir should be removed"
    # The broker's own log4j output went to the log file, not the terminal.
    assert "Kafka Server started" in log_file.read_text()
    kafka.stop()  # idempotent


@pytest.mark.kafka
def test_startup_failure_reports_log_tail_and_cleans_up(tmp_path: Path) -> None:
    # Occupy the port the broker is told to use: the JVM must fail to bind,
    # and start() must say so promptly instead of waiting out the timeout.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        kafka = LocalKafka(port=port, data_dir=tmp_path / "data")
        with pytest.raises(RuntimeError, match="exited with code") as info:
            kafka.start(timeout=60)
    assert "Address already in use" in str(info.value)
    assert not kafka.is_running()
    assert (tmp_path / "data").is_dir(), "a caller-given data dir is kept"


def test_toolchain_missing_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn
    with pytest.raises(KafkaToolchainMissing) as info:
        LocalKafka().start()
    message = str(info.value)
    assert "java" in info.value.missing
    for needed in (
        "Java 17",
        "Maven 3",
        "MOT_KAFKA_BOOTSTRAP_SERVERS=host:port",
        "deploy/docker-compose.yml",
    ):
        assert needed in message

    with pytest.raises(KafkaToolchainMissing) as info:
        kafka_classpath(cache_dir=tmp_path / "empty-cache")
    assert info.value.missing == ["mvn"]


def test_classpath_cache_is_keyed_by_pom_hash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import hashlib

    jar = tmp_path / "fake.jar"
    jar.write_bytes(b"")
    digest = hashlib.sha256(local_kafka.POM_PATH.read_bytes()).hexdigest()[:16]
    (tmp_path / f"kafka-classpath-{digest}.txt").write_text(str(jar))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))  # mvn must not be needed
    assert kafka_classpath(cache_dir=tmp_path) == str(jar)

    jar.unlink()  # a cached classpath pointing at vanished jars is not trusted
    with pytest.raises(KafkaToolchainMissing):
        kafka_classpath(cache_dir=tmp_path)


def test_cluster_ids_never_look_like_an_option() -> None:
    """The storage tool would read an id starting with '-' as a flag and fail to format."""
    from streams.kafka.local_kafka import _cluster_id

    ids = [_cluster_id() for _ in range(2000)]
    assert not any(i.startswith("-") for i in ids)
    assert all(len(i) == 22 for i in ids)
