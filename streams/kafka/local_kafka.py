"""A real, single-node Apache Kafka broker for development and tests.

Why: mot is a Kafka/Faust service, and fakes (in-memory transports, mocks)
hide exactly the problems worth catching -- protocol versions, topic and
changelog creation, consumer-group rebalances.  This module runs the genuine
broker, resolved from Maven Central by ``deploy/kafka/pom.xml``, in KRaft
combined mode (broker + controller in one JVM), bound to loopback only, with
no Docker and no ZooKeeper.  It needs ``java`` (17+) and ``mvn`` on PATH.

Usage::

    with LocalKafka() as kafka:
        servers = kafka.bootstrap_servers  # "127.0.0.1:PORT"

or from a shell: ``python -m streams.kafka.local_kafka [--port N] [--data-dir D]``.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from types import TracebackType

__all__ = [
    "POM_PATH",
    "KafkaToolchainMissing",
    "LocalKafka",
    "kafka_classpath",
]

#: The Maven project that pins the Kafka release (property ``kafka.version``).
POM_PATH = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "pom.xml"

# C1-only JIT and the serial GC: a dev broker is short-lived and the machine
# small, so startup time matters more than peak throughput.
_JVM_FLAGS = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:-UsePerfData",
    "-Xss512k",
    "-Djava.awt.headless=true",
)

_LOG4J2_CONFIG = """\
# Written by streams/kafka/local_kafka.py: everything goes to stdout, which the
# launcher redirects to the broker's log file, never to the terminal.
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = OUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.statechange.name = state.change.logger
logger.statechange.level = WARN
"""


class KafkaToolchainMissing(RuntimeError):
    """``java`` or ``mvn`` is not on PATH, so no local broker can be run."""

    def __init__(self, missing: list[str]) -> None:
        self.missing = missing
        super().__init__(
            f"Cannot run a local Kafka broker: {' and '.join(missing)} not found on PATH.\n"
            "  - Install a Java 17+ JRE (e.g. `apt-get install openjdk-17-jre-headless`)"
            " and Maven 3 (e.g. `apt-get install maven`); Kafka itself is then"
            " fetched from Maven Central on first use.\n"
            "  - Or use an existing cluster: set MOT_KAFKA_BOOTSTRAP_SERVERS=host:port.\n"
            "  - With Docker: `docker compose -f deploy/docker-compose.yml up` runs Kafka."
        )


def _require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise KafkaToolchainMissing(missing)


def _default_cache_dir() -> Path:
    env = os.environ.get("MOT_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "mot"


def kafka_classpath(cache_dir: Path | None = None) -> str:
    """Return the Java classpath of the Kafka broker pinned by ``POM_PATH``.

    Maven runs only on a cache miss (it takes seconds, and downloads on first
    use); the result is cached under ``cache_dir`` in a file named after the
    pom's content hash, so bumping ``kafka.version`` re-resolves by itself.
    A cached classpath whose jars have vanished (cleaned ~/.m2) is redone.
    """
    cache_dir = cache_dir if cache_dir is not None else _default_cache_dir()
    digest = hashlib.sha256(POM_PATH.read_bytes()).hexdigest()[:16]
    cache_file = cache_dir / f"kafka-classpath-{digest}.txt"
    if cache_file.is_file():
        classpath = cache_file.read_text().strip()
        if classpath and all(Path(p).is_file() for p in classpath.split(os.pathsep)):
            return classpath

    _require("mvn")
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=".classpath-", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        result = subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-Dstyle.color=never",
                "-f",
                str(POM_PATH),
                "dependency:build-classpath",
                f"-Dmdep.outputFile={tmp}",
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        classpath = tmp.read_text().strip() if tmp.exists() else ""
        if result.returncode != 0 or not classpath:
            raise RuntimeError(
                f"mvn could not resolve the Kafka classpath from {POM_PATH} "
                f"(exit {result.returncode}):\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
            )
        tmp.replace(cache_file)  # atomic: concurrent callers never see half a file
    finally:
        tmp.unlink(missing_ok=True)
    return classpath


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 60) -> str:
    try:
        with path.open(errors="replace") as fh:
            return "".join(deque(fh, maxlen=lines))
    except OSError:
        return "(no log)"


def _set_pdeathsig() -> None:
    """In the child: get SIGTERM if the parent dies, so even a SIGKILLed
    parent leaves no broker behind (Linux only; a no-op elsewhere)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


async def _broker_answers(bootstrap: str, timeout: float) -> bool:
    """True once the broker serves a Metadata request naming itself and a
    controller -- i.e. it is unfenced and can create topics, not merely
    accepting TCP connections."""
    from aiokafka.client import AIOKafkaClient

    client = AIOKafkaClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout * 1000),
        metadata_max_age_ms=1000,
    )
    try:
        await asyncio.wait_for(client.bootstrap(), timeout)
        metadata = await asyncio.wait_for(client.fetch_all_metadata(), timeout)
        return bool(metadata.brokers()) and metadata.controller is not None
    except Exception:
        return False
    finally:
        await client.close()


def _probe(bootstrap: str, timeout: float) -> bool:
    # A private thread and event loop: start() is synchronous but may be
    # called from inside a running loop (async tests, a Faust app).
    box: list[bool] = [False]

    def run() -> None:
        box[0] = asyncio.run(_broker_answers(bootstrap, timeout))

    thread = threading.Thread(target=run, name="local-kafka-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5)
    return box[0]


class LocalKafka:
    """One real Kafka broker+controller JVM on 127.0.0.1 (KRaft combined mode).

    Ports default to free ephemeral ones so parallel runs never clash.  A
    ``data_dir`` you pass is kept (and reused if already formatted); the
    temporary one made otherwise is deleted by :meth:`stop`.
    """

    def __init__(
        self,
        port: int | None = None,
        data_dir: Path | None = None,
        log_file: Path | None = None,
        heap: str = "512m",
        fast_start: bool = True,
    ) -> None:
        self.port = port
        self.controller_port: int | None = None
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.log_file = Path(log_file) if log_file is not None else None
        self.heap = heap
        # C1-only JIT starts fast but caps throughput: benchmarks pass fast_start=False.
        self.jvm_flags = _JVM_FLAGS if fast_start else ("-XX:-UsePerfData",
                                                        "-Djava.awt.headless=true")
        self.startup_seconds: float | None = None
        self._own_data_dir = data_dir is None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``127.0.0.1:PORT``, as Kafka clients want it (valid after start())."""
        if self.port is None:
            raise RuntimeError("LocalKafka has no port yet: call start() first")
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the broker JVM (also its process-group id), while running."""
        return self._proc.pid if self._proc is not None else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 90) -> str:
        """Launch the broker and block until it really serves requests.

        Returns the bootstrap string.  Raises RuntimeError with the log's tail
        if the JVM exits or ``timeout`` seconds pass first (and then cleans
        up), KafkaToolchainMissing without java/mvn.
        """
        if self.is_running():
            return self.bootstrap_servers
        _require("java")
        began = time.monotonic()
        classpath = kafka_classpath()
        try:
            self._launch(classpath)
            self._wait_ready(began + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self.bootstrap_servers

    def _launch(self, classpath: str) -> None:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="mot-kafka-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.log_file is None:
            self.log_file = self.data_dir / "broker.log"
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = _free_port()
        self.controller_port = _free_port()
        while self.controller_port == self.port:
            self.controller_port = _free_port()

        log_dir = self.data_dir / "kraft-combined-logs"
        props = self.data_dir / "server.properties"
        props.write_text(self._server_properties(log_dir))
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(_LOG4J2_CONFIG)

        java = [
            "java",
            f"-Xmx{self.heap}",
            *self.jvm_flags,
            f"-Dlog4j2.configurationFile={log4j}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            classpath,
        ]
        with self.log_file.open("ab") as log:
            if not (log_dir / "meta.properties").exists():
                # Static quorum (controller.quorum.voters), so no --standalone.
                fmt = subprocess.run(
                    [
                        *java,
                        "kafka.tools.StorageTool",
                        "format",
                        "-t",
                        _cluster_id(),
                        "-c",
                        str(props),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                if fmt.returncode != 0:
                    raise RuntimeError(
                        f"kafka-storage format failed (exit {fmt.returncode}); "
                        f"log {self.log_file}:\n{_tail(self.log_file)}"
                    )
            # Own session/process group: a terminal's Ctrl-C reaches only us,
            # and we stop the broker deliberately (stop()/atexit) instead of
            # racing its shutdown hooks; stop() signals the whole group.
            main_thread = threading.current_thread() is threading.main_thread()
            self._proc = subprocess.Popen(
                [*java, "kafka.Kafka", str(props)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # PDEATHSIG fires when the parent *thread* exits, so only arm
                # it from the main thread, whose end is the process's end.
                preexec_fn=_set_pdeathsig if main_thread and sys.platform == "linux" else None,
            )
        atexit.register(self.stop)

    def _server_properties(self, log_dir: Path) -> str:
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(log_dir),
            # One node: every internal topic must fit on it.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "num.partitions": "1",
            "auto.create.topics.enable": "true",
            # Tests join groups constantly; don't wait 3 s for more members.
            "group.initial.rebalance.delay.ms": "0",
            # Small thread pools: 2 cores, one client at a time.
            "num.network.threads": "2",
            "num.io.threads": "2",
            "background.threads": "2",
            "num.recovery.threads.per.data.dir": "1",
            "log.cleaner.threads": "1",
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _wait_ready(self, deadline: float) -> None:
        assert self._proc is not None and self.log_file is not None
        while True:
            code = self._proc.poll()
            if code is not None:
                raise RuntimeError(
                    f"Kafka broker exited with code {code} during startup; "
                    f"log {self.log_file}:\n{_tail(self.log_file)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(
                    f"Kafka broker not ready on {self.bootstrap_servers} in time; "
                    f"log {self.log_file}:\n{_tail(self.log_file)}"
                )
            if self._port_open() and _probe(self.bootstrap_servers, min(5.0, remaining)):
                return
            time.sleep(0.2)

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port or 0), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 30) -> None:
        """Stop the broker: SIGTERM to its process group (a clean shutdown),
        SIGKILL after ``timeout`` seconds.  Idempotent.  Deletes the data dir
        only if this object created it."""
        proc, self._proc = self._proc, None
        atexit.unregister(self.stop)
        if proc is not None:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            # Anything left in the group (there shouldn't be) goes too.
            _signal_group(proc.pid, signal.SIGKILL)
        if self._own_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
            if self.log_file is not None and not self.log_file.exists():
                self.log_file = None

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _cluster_id() -> str:
    """A random cluster id in Kafka's format (base64url of a UUID, no padding).

    One in 64 such ids starts with ``-``, which the storage tool's argument parser
    takes for an option; those are drawn again.
    """
    import base64

    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def main(argv: list[str] | None = None) -> int:
    """Run a broker in the foreground until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m streams.kafka.local_kafka",
        description="Run a local single-node Kafka broker (KRaft) on 127.0.0.1.",
    )
    parser.add_argument("--port", type=int, default=None, help="broker port (default: a free one)")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep data here across runs (default: a temp dir, deleted on exit)",
    )
    parser.add_argument(
        "--log-file", type=Path, default=None, help="broker log (default: DATA_DIR/broker.log)"
    )
    parser.add_argument("--heap", default="512m", help="JVM max heap (default: 512m)")
    args = parser.parse_args(argv)

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    kafka = LocalKafka(
        port=args.port, data_dir=args.data_dir, log_file=args.log_file, heap=args.heap
    )
    try:
        try:
            bootstrap = kafka.start()
        except KafkaToolchainMissing as exc:
            print(exc, file=sys.stderr)
            return 2
        print(bootstrap, flush=True)
        print(
            f"Kafka ready in {kafka.startup_seconds:.1f}s; log: {kafka.log_file}. "
            f"export MOT_KAFKA_BOOTSTRAP_SERVERS={bootstrap}  (Ctrl-C stops it)",
            file=sys.stderr,
            flush=True,
        )
        while kafka.is_running():
            time.sleep(0.5)
        print(
            f"Kafka broker exited unexpectedly; log {kafka.log_file}:\n"
            f"{_tail(kafka.log_file) if kafka.log_file else ''}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("stopping Kafka...", file=sys.stderr, flush=True)
        return 0
    finally:
        kafka.stop()


if __name__ == "__main__":
    sys.exit(main())
