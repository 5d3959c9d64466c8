"""Benchmark: the same stateful job three ways on the same real Kafka, in one run.

    python bench/run.py                       # 1M events, 100k customers, 6 partitions
    python bench/run.py --smoke               # seconds: proves the script still works
    python bench/run.py --case restore        # restore from an empty disk (100k events)
    python bench/run.py --case restore --events 1000000 --customers 100000
    python bench/run.py --case standby        # 1 vs 2 workers with MOT_STANDBY_REPLICAS=1

Contestants (each a separate process reading the same input topic):
  raw      a bare aiokafka consume → process → produce loop, state in a dict (the ceiling)
  service  this service's worker (Faust agent, RocksDB table + changelog)
  quix     Quix Streams with its RocksDB state and changelog (the peer)
Every contestant runs ``agents.domain.moment_processor.process_record``. The service runs
with its defaults; ``BENCH_MOT_<NAME>=value`` sets ``MOT_<NAME>`` for it (for example
``BENCH_MOT_BATCH_DELIVERY=false``).

Before/after a change, on one broker and one input:
``--contestants service=/tmp/before,service,service=/tmp/before,service --throughput-only``
runs the service from another source tree (``git archive`` of a commit) alternately with
this one; ``--throughput-only`` leaves out the restore, two-worker and latency figures.

Figures: sustained events/s (between 10 % and 90 % of the input committed), events per
CPU-second, peak RSS, p50/p99 latency from event produced to alert visible at half the
service's measured maximum, the service's state size on disk per 1M customers, its state
restore time after a restart with an empty disk, and the service with two workers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from streams.kafka.local_kafka import LocalKafka  # noqa: E402
from streams.offline.traffic import TrafficGenerator  # noqa: E402

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z: fixed event times, in the past


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- data ---------------------------------------------------------------------------

def make_events(n: int, customers: int, seed: int = 11) -> list[tuple[bytes, bytes]]:
    """``n`` synthetic events, 20 ms of event time apart (a busy firm's traffic)."""
    gen = TrafficGenerator(seed=seed, customers=customers)
    spacing = 0.02
    out = []
    for e in gen.events(START, spacing, n):
        out.append((e["customer_id"].encode(), orjson.dumps(e)))
    return out


async def create_topics(bootstrap: str, names: list[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """The partition numbers of an existing topic, from the cluster's metadata."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


async def produce_all(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20,
                                max_batch_size=512 * 1024, acks=1)
    await producer.start()
    t0 = time.monotonic()
    try:
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - t0


async def committed(bootstrap: str, group: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    except KafkaError:  # the group (or __consumer_offsets) does not exist yet
        return 0
    finally:
        await admin.close()
    return sum(max(o.offset, 0) for tp, o in offsets.items() if tp.topic == topic)


# --- contestants --------------------------------------------------------------------

@dataclass
class Contestant:
    name: str
    cmd: list[str]
    env: dict[str, str]
    group: str
    data_dir: Path
    health_url: str | None = None
    cwd: str | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, log_dir: Path, count: int = 1) -> None:
        """Start ``count`` processes; service workers one after the other, each once the
        previous one is healthy (as a rolling start does)."""
        for i in range(count):
            env = dict(self.env)
            if self.health_url is not None:
                port = free_port() if i else int(env["MOT_WEB_PORT"])
                env["MOT_WEB_PORT"] = str(port)
                env["MOT_DATA_DIR"] = str(self.data_dir / f"w{i}")
                if i:
                    self.wait_healthy()
            log = open(log_dir / f"{self.name}-{self.group}-{i}.log", "ab")  # noqa: SIM115
            self.procs.append(subprocess.Popen(self.cmd, cwd=self.cwd or REPO, env=env, stdout=log,
                                               stderr=subprocess.STDOUT,
                                               start_new_session=True))
            log.close()

    def wait_healthy(self, timeout: float = 120) -> float:
        t0 = time.monotonic()
        if self.health_url is None:
            return 0.0
        while time.monotonic() - t0 < timeout:
            try:
                with urllib.request.urlopen(self.health_url, timeout=2) as r:
                    if r.status == 200:
                        return time.monotonic() - t0
            except OSError:
                pass
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"{self.name} exited during start")
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not healthy in {timeout}s")

    def peak_rss_mb(self) -> float:
        peaks = []
        for p in self.procs:
            try:
                for line in Path(f"/proc/{p.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peaks.append(int(line.split()[1]) / 1024)
            except FileNotFoundError:
                pass
        return max(peaks, default=0.0)

    def cpu_seconds(self) -> list[float]:
        out = []
        for p in self.procs:
            try:
                t = psutil.Process(p.pid).cpu_times()
                out.append(t.user + t.system)
            except psutil.NoSuchProcess:
                out.append(0.0)
        return out

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        self.procs.clear()


def contestant(name: str, bootstrap: str, input_topic: str, output_topic: str,
               workdir: Path, partitions: int) -> Contestant:
    """``name``: raw, quix, service, or ``service=TREE`` (the service from source tree TREE)."""
    name, _, tree = name.partition("=")
    tag = uuid.uuid4().hex[:6]
    group = f"bench-{name}-{tag}"
    data_dir = workdir / f"{name}-{tag}"
    data_dir.mkdir(parents=True)
    base = {k: v for k, v in os.environ.items() if not k.startswith("MOT_")}
    base.update(PYTHONPATH=tree or str(REPO), BENCH_BOOTSTRAP=bootstrap, BENCH_INPUT=input_topic,
                BENCH_OUTPUT=output_topic, BENCH_GROUP=group, BENCH_STATE_DIR=str(data_dir))
    if name == "service":
        port = free_port()
        base.update(MOT_KAFKA_BOOTSTRAP_SERVERS=bootstrap, MOT_APP_ID=group,
                    MOT_TOPIC_EVENTS=input_topic, MOT_TOPIC_ALERTS_FAILED_MOMENT=output_topic,
                    MOT_TOPIC_DEAD_LETTER=f"{input_topic}.dead-letter",
                    MOT_PARTITIONS=str(partitions), MOT_WEB_PORT=str(port),
                    MOT_LOG_LEVEL=os.environ.get("BENCH_LOG_LEVEL", "warning"),
                    MOT_DATA_DIR=str(data_dir))
        base.update({k[len("BENCH_"):]: v for k, v in os.environ.items()
                     if k.startswith("BENCH_MOT_")})
        return Contestant(name, [sys.executable, "-m", "streams.worker"], base, group, data_dir,
                          health_url=f"http://127.0.0.1:{port}/health", cwd=tree or None)
    module = {"raw": "bench.raw_aiokafka", "quix": "bench.quix_job"}[name]
    return Contestant(name, [sys.executable, "-m", module], base, group, data_dir)


# --- measurements -------------------------------------------------------------------

async def throughput(c: Contestant, bootstrap: str, topic: str, n: int, log_dir: Path,
                     workers: int = 1, timeout: float = 900,
                     fill: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    """Time ``c`` from 10 % to 90 % of ``topic`` committed: a pre-filled topic, or with
    ``fill`` an empty one filled once every worker runs (faster than ``c`` consumes)."""
    c.start(log_dir, workers)
    try:
        c.wait_healthy()
        cpu0 = c.cpu_seconds()
        if fill is not None:
            await asyncio.sleep(5)  # let the group settle before the load arrives
            await produce_all(bootstrap, topic, fill)
        t_start = time.monotonic()
        marks: dict[str, tuple[float, int, list[float]]] = {}
        while time.monotonic() - t_start < timeout:
            done = await committed(bootstrap, c.group, topic)
            now = time.monotonic()
            if "p10" not in marks and done >= 0.1 * n:
                marks["p10"] = (now, done, c.cpu_seconds())
            if "p90" not in marks and done >= 0.9 * n:
                marks["p90"] = (now, done, c.cpu_seconds())
            if done >= n:
                break
            await asyncio.sleep(0.25)
        else:
            raise TimeoutError(f"{c.name} did not finish {n} events in {timeout}s")
        (t1, d1, cpu1), (t2, d2, cpu2) = marks["p10"], marks["p90"]
        if t2 <= t1:  # a tiny input was done within one poll: measure from the start
            # (CPU from when the workers were healthy: less than a clock tick otherwise)
            t1, d1, cpu1 = t_start, 0, cpu0
        cpu = [b - a for a, b in zip(cpu1, cpu2, strict=True)]
        events = d2 - d1
        return {
            "events_per_s": events / (t2 - t1),
            "events_per_cpu_s": events / sum(cpu) if sum(cpu) else 0.0,
            "cpu_share": [x / sum(cpu) for x in cpu] if sum(cpu) else [],
            "peak_rss_mb": c.peak_rss_mb(),
        }
    finally:
        c.stop()


async def latency(c: Contestant, bootstrap: str, topic: str, out_topic: str, rate: float,
                  seconds: float, customers: int, log_dir: Path) -> dict[str, float]:
    """Offer ``rate`` events/s for ``seconds``; time each alert from send to visible."""
    c.start(log_dir)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                enable_auto_commit=False, fetch_max_wait_ms=10)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1, acks=1)
    try:
        c.wait_healthy()
        await consumer.start()
        await producer.start()
        parts = await partitions_of(bootstrap, out_topic)
        consumer.assign([TopicPartition(out_topic, p) for p in parts])
        await consumer.seek_to_end()
        gen = TrafficGenerator(seed=99, customers=customers)
        sent_at: dict[str, float] = {}
        latencies: list[float] = []

        async def receive(deadline: float) -> None:
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=50)
                now = time.monotonic()
                for recs in batch.values():
                    for r in recs:
                        eid = orjson.loads(r.value).get("event_id")
                        if eid in sent_at:
                            latencies.append(now - sent_at.pop(eid))

        # warm up until the contestant answers, then measure; a contestant without a health
        # page (Quix) may join its group late, so answers are awaited up to 3 minutes
        t_begin = time.monotonic()
        receiver = asyncio.ensure_future(receive(t_begin + seconds + 180))
        i = 0
        while True:
            elapsed = time.monotonic() - t_begin
            if elapsed >= seconds:
                break
            target = int(elapsed * rate)
            while i < target:
                e = gen.next_event(time.time() - 1.0)
                sent_at[e["event_id"]] = time.monotonic()
                await producer.send(topic, orjson.dumps(e), key=e["customer_id"].encode())
                i += 1
            await asyncio.sleep(0.002)
        await producer.flush()
        # Until the answers stop coming (a contestant that is slow to start answers late),
        # at most the receiver's own deadline.
        seen, quiet = -1, 0
        while not receiver.done() and quiet < 3:
            await asyncio.sleep(1)
            if latencies and len(latencies) == seen:
                quiet += 1
            else:
                seen, quiet = len(latencies), 0
        receiver.cancel()
        warm = latencies[len(latencies) // 5:]  # drop the first fifth: start-up
        if len(warm) < 5:
            return {"p50_ms": float("nan"), "p99_ms": float("nan"), "samples": len(warm)}
        q = statistics.quantiles(warm, n=100)
        return {"p50_ms": q[49] * 1000, "p99_ms": q[98] * 1000, "samples": len(warm)}
    finally:
        await consumer.stop()
        await producer.stop()
        c.stop()


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


RESTORED = re.compile(r"restored (\d+) changelog records in ([\d.]+) s \((\d+) records/s\)")


async def changelog_records(bootstrap: str, app_id: str) -> int:
    """Records in the app's changelog topics now (end minus start offsets): what a restore
    from an empty disk reads, at most (compaction leaves gaps)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        names = [t for t in await consumer.topics()
                 if t.startswith(f"{app_id}-") and t.endswith("-changelog")]
        tps = [TopicPartition(t, p) for t in names for p in await partitions_of(bootstrap, t)]
        if not tps:
            return 0
        ends = await consumer.end_offsets(tps)
        starts = await consumer.beginning_offsets(tps)
        return sum(ends[tp] - starts[tp] for tp in tps)
    finally:
        await consumer.stop()


async def restore_time(c: Contestant, log_dir: Path, bootstrap: str) -> dict[str, float]:
    """A fresh worker (empty disk) of the same app: time from its start until it serves
    again, and the restore's own figures from its log (records applied, seconds)."""
    shutil.rmtree(c.data_dir, ignore_errors=True)
    c.data_dir.mkdir(parents=True)
    in_changelogs = await changelog_records(bootstrap, c.group)
    c.env["MOT_LOG_LEVEL"] = "info"  # the restore's summary line
    log = log_dir / f"{c.name}-{c.group}-0.log"
    before = log.stat().st_size if log.exists() else 0
    c.start(log_dir)
    try:
        ready_s = c.wait_healthy(timeout=1800)
    finally:
        c.stop()
    with open(log, "rb") as f:
        f.seek(before)
        found = RESTORED.findall(f.read().decode(errors="replace"))
    records = sum(int(n) for n, _, _ in found)
    seconds = sum(float(t) for _, t, _ in found)
    # the rate as the worker measured it: a small restore's time rounds to 0.0 s in the log
    exact_s = sum(int(n) / int(rate) for n, _, rate in found if int(rate) > 0)
    return {"ready_s": ready_s, "changelog_records": in_changelogs,
            "disk_bytes": dir_size(c.data_dir),  # the restored stores, as RocksDB left them
            "records_restored": records, "restore_s": seconds,
            "records_per_s": records / exact_s if exact_s else float("nan"),
            # comparable with a worker that does not log its restore
            "changelog_records_per_ready_s": in_changelogs / ready_s if ready_s else 0.0}


async def restore_case(bootstrap: str, args: argparse.Namespace, workdir: Path,
                       log_dir: Path) -> dict[str, Any]:
    """The service alone: score ``--events``, then restore its state on an empty disk."""
    tag = uuid.uuid4().hex[:6]
    src, out = f"bench-{tag}.restore-in", f"bench-{tag}.restore-out"
    await create_topics(bootstrap, [src, out], args.partitions)
    records = make_events(args.events, args.customers)
    await produce_all(bootstrap, src, records)
    del records
    c = contestant("service", bootstrap, src, out, workdir, args.partitions)
    r = await throughput(c, bootstrap, src, args.events, log_dir)
    r["state_bytes_per_1m_customers"] = dir_size(c.data_dir) * 1_000_000 / args.customers
    r["restore"] = await restore_time(c, log_dir, bootstrap)
    return r


async def standby_case(bootstrap: str, args: argparse.Namespace, workdir: Path,
                       log_dir: Path) -> dict[str, Any]:
    """One worker, then two with ``MOT_STANDBY_REPLICAS=1``: events per CPU-second."""
    records = make_events(args.events, args.customers)
    res: dict[str, Any] = {}
    for workers in (1, 2):
        tag = uuid.uuid4().hex[:6]
        src, out = f"bench-{tag}.standby-in", f"bench-{tag}.standby-out"
        await create_topics(bootstrap, [src, out], args.partitions)
        c = contestant("service", bootstrap, src, out, workdir, args.partitions)
        c.env["MOT_STANDBY_REPLICAS"] = "1"
        if workers == 1:
            await produce_all(bootstrap, src, records)
            res["one"] = await throughput(c, bootstrap, src, args.events, log_dir)
        else:
            res["two"] = await throughput(c, bootstrap, src, args.events, log_dir, workers=2,
                                          fill=records)
    one, two = res["one"]["events_per_cpu_s"], res["two"]["events_per_cpu_s"]
    res["ratio"] = two / one if one else float("nan")
    return res


# --- main ---------------------------------------------------------------------------

def fmt(x: float, digits: int = 0) -> str:
    return "n/a" if x != x else f"{x:,.{digits}f}"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="mot-bench-"))
    log_dir = workdir / "logs"
    log_dir.mkdir()
    kafka = None
    bootstrap = args.bootstrap
    if not bootstrap:
        kafka = LocalKafka(data_dir=workdir / "kafka", heap="1g", fast_start=False)
        bootstrap = kafka.start(timeout=180)
    results: dict[str, Any] = {"events": args.events, "customers": args.customers,
                               "partitions": args.partitions, "case": args.case,
                               "contestants": {}}
    try:
        if args.case == "restore":
            results["restore_case"] = await restore_case(bootstrap, args, workdir, log_dir)
            return results
        if args.case == "standby":
            results["standby_case"] = await standby_case(bootstrap, args, workdir, log_dir)
            return results
        tag = uuid.uuid4().hex[:6]
        src = f"bench-{tag}.input"
        records = make_events(args.events, args.customers)
        await create_topics(bootstrap, [src], args.partitions)
        t = await produce_all(bootstrap, src, records)
        print(f"produced {len(records):,} events in {t:.1f}s", file=sys.stderr)
        service_max = None
        for i, name in enumerate(args.contestants):
            out = f"bench-{tag}.{i}.alerts"
            await create_topics(bootstrap, [out], args.partitions)
            c = contestant(name, bootstrap, src, out, workdir, args.partitions)
            r = await throughput(c, bootstrap, src, args.events, log_dir)
            print(f"{name}: {r['events_per_s']:,.0f} events/s, "
                  f"{r['events_per_cpu_s']:,.0f} events/CPU-s", file=sys.stderr)
            seen = results["contestants"]
            if name in seen:  # an alternated run: every repeat kept
                name = f"{name} #{sum(k.split(' #')[0] == name for k in seen) + 1}"
            if name == "service" and not args.throughput_only:
                service_max = r["events_per_s"]
                r["state_bytes_per_1m_customers"] = (
                    dir_size(c.data_dir) * 1_000_000 / args.customers)
                r["restore"] = await restore_time(c, log_dir, bootstrap)
                # Two workers join before the load arrives: with a backlog already waiting,
                # the group's first rebalance can leave both idle (docs/performance.md).
                src2 = f"bench-{tag}.input-2"
                await create_topics(bootstrap, [src2], args.partitions)
                c2 = contestant(name, bootstrap, src2, out, workdir, args.partitions)
                r2 = await throughput(c2, bootstrap, src2, args.events, log_dir, workers=2,
                                      fill=records)
                r["two_workers"] = r2
            results["contestants"][name] = r
        del records
        if args.throughput_only:
            return results
        rate = args.latency_rate or (service_max or 1000.0) / 2
        results["latency_rate"] = rate
        for i, name in enumerate(dict.fromkeys(args.contestants)):  # each once
            lat_src = f"bench-{tag}.{i}.latency-in"
            lat_out = f"bench-{tag}.{i}.latency-out"
            await create_topics(bootstrap, [lat_src, lat_out], args.partitions)
            c = contestant(name, bootstrap, lat_src, lat_out, workdir, args.partitions)
            results["contestants"][name]["latency"] = await latency(
                c, bootstrap, lat_src, lat_out, rate, args.latency_seconds, args.customers,
                log_dir)
    finally:
        if kafka is not None:
            kafka.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def restore_lines(label: str, r: dict[str, Any]) -> list[str]:
    return [f"{label}: ready in {r['ready_s']:.1f} s from an empty disk; "
            f"{r['records_restored']:,} changelog records restored in {r['restore_s']:.1f} s "
            f"({fmt(r['records_per_s'])} records/s; {r['changelog_records']:,} in the "
            f"changelog topics: {fmt(r['changelog_records_per_ready_s'])} per second "
            f"to ready)"]


def table(res: dict[str, Any]) -> str:
    case = res.get("case", "all")
    size = f"{res['events']:,} events, {res['customers']:,} customers"
    if case == "restore":
        r = res["restore_case"]
        return "\n".join([
            f"service: {r['events_per_s']:,.0f} events/s, {r['events_per_cpu_s']:,.0f} "
            f"events/CPU-s ({size})",
            f"service state on disk: {r['state_bytes_per_1m_customers'] / 1e6:,.0f} MB "
            f"per 1M customers",
            *restore_lines(f"restore ({size})", r["restore"]),
            f"restored state on disk: "
            f"{r['restore']['disk_bytes'] * 1e6 / res['customers'] / 1e6:,.0f} MB "
            f"per 1M customers"])
    if case == "standby":
        r = res["standby_case"]
        one, two = r["one"], r["two"]
        return "\n".join([
            f"service, MOT_STANDBY_REPLICAS=1 ({size}):",
            f"  1 worker:  {one['events_per_s']:,.0f} events/s, "
            f"{one['events_per_cpu_s']:,.0f} events/CPU-s",
            f"  2 workers: {two['events_per_s']:,.0f} events/s total, "
            f"{two['events_per_cpu_s']:,.0f} events/CPU-s ({r['ratio']:.2f}x one worker's), "
            f"CPU share {', '.join(f'{x:.0%}' for x in two['cpu_share'])}"])
    rows = [("contestant", "events/s", "events/CPU-s", "p50 ms", "p99 ms", "peak RSS MB")]
    for name, r in res["contestants"].items():
        lat = r.get("latency", {})
        rows.append((name, fmt(r["events_per_s"]), fmt(r["events_per_cpu_s"]),
                     fmt(lat.get("p50_ms", float("nan")), 1),
                     fmt(lat.get("p99_ms", float("nan")), 1), fmt(r["peak_rss_mb"])))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    svc = res["contestants"].get("service")
    if svc and "two_workers" in svc:
        two = svc["two_workers"]
        ratio = two["events_per_cpu_s"] / svc["events_per_cpu_s"] if svc["events_per_cpu_s"] else 0
        lines += [
            "",
            f"service state on disk: {svc['state_bytes_per_1m_customers'] / 1e6:,.0f} MB "
            f"per 1M customers",
            *restore_lines(f"service restore ({size})", svc["restore"]),
            f"service, 2 workers: {two['events_per_s']:,.0f} events/s total, "
            f"{two['events_per_cpu_s']:,.0f} events/CPU-s ({ratio:.2f}x one worker's), "
            f"CPU share {', '.join(f'{x:.0%}' for x in two['cpu_share'])}",
            f"latency measured at {res['latency_rate']:,.0f} events/s offered",
        ]
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--case", choices=("all", "restore", "standby"), default="all",
                   help="all: every contestant and figure; restore: the service's restore "
                        "from an empty disk only; standby: one worker vs two with "
                        "MOT_STANDBY_REPLICAS=1 only")
    p.add_argument("--events", type=int, default=0,
                   help="input events (default 1M; 100k for --case restore/standby)")
    p.add_argument("--customers", type=int, default=0,
                   help="customers (default 100k; 10k for --case restore/standby)")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--latency-seconds", type=float, default=20.0)
    p.add_argument("--latency-rate", type=float, default=0.0,
                   help="offered load for the latency figures (default: half the service's max)")
    p.add_argument("--contestants", default="raw,service,quix")
    p.add_argument("--bootstrap", default="", help="use this cluster instead of a local one")
    p.add_argument("--smoke", action="store_true", help="tiny run: checks the script works")
    p.add_argument("--json", type=Path, help="also write the figures here")
    p.add_argument("--keep", action="store_true", help="keep logs and state")
    p.add_argument("--throughput-only", action="store_true",
                   help="events/s and events/CPU-s only (no restore, two workers, latency)")
    args = p.parse_args()
    args.contestants = [c.strip() for c in args.contestants.split(",") if c.strip()]
    small = args.case != "all"
    args.events = args.events or (100_000 if small else 1_000_000)
    args.customers = args.customers or (10_000 if small else 100_000)
    if args.smoke:
        args.events, args.customers, args.partitions, args.latency_seconds = 3000, 300, 2, 4.0
    res = asyncio.run(run(args))
    print(table(res))
    if args.json:
        args.json.write_text(orjson.dumps(res, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
