"""``mot``: the service's command line.

    mot worker          run a stream worker (agents, tables, /metrics)
    mot local           the embedded default: local Kafka + worker + traffic + live alerts
    mot generate        publish synthetic touchpoint traffic
    mot tail            follow the alert topics (readable, or raw JSON with --json)
    mot topics          create the service's topics on a cluster
    mot replay FILE     the alerts the stream would emit for a file, without Kafka
    mot report FILE     the moments-of-truth report of a file (table, JSON, HTML)
    mot produce FILE    publish a file to the input topic (backfill)
    mot backtest FILE   replay history under new rules and the old ones; the difference
    mot rules publish FILE   validate a rules document and publish it to the workers
    mot forget ID...    request the erasure of customers (right to be forgotten)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from streams.offline import commands as offline
from streams.settings import Settings, SettingsError


def _settings() -> Settings:
    return Settings.from_env()


# --- generate ---------------------------------------------------------------------------

async def generate(s: Settings, rate: float, count: int | None, customers: int, seed: int) -> int:
    """Publish synthetic events at ``rate`` per second (0: as fast as possible)."""
    from aiokafka import AIOKafkaProducer

    from streams.kafka.clients import client_options
    from streams.offline.traffic import TrafficGenerator

    gen = TrafficGenerator(seed=seed, customers=customers)
    producer = AIOKafkaProducer(**client_options(s), linger_ms=5, acks="all")
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        while count is None or sent < count:
            event = gen.next_event(time.time())
            await producer.send(
                s.topic_events, orjson.dumps(event), key=event["customer_id"].encode()
            )
            sent += 1
            if rate > 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


# --- tail -------------------------------------------------------------------------------

async def tail(s: Settings, raw: bool, from_beginning: bool, dead_letters: bool,
               limit: int | None = None, out=None) -> int:
    """Print alerts as they arrive until interrupted (or ``limit`` records)."""
    from aiokafka import AIOKafkaConsumer

    from streams.alert_view import render_record
    from streams.kafka.admin import ensure_topics
    from streams.kafka.clients import client_options

    out = out or sys.stdout
    topics = [s.topic_alerts_failed_moment, s.topic_alerts_circles, s.topic_alerts_drop_off,
              s.topic_alerts_touchpoint_status]
    if dead_letters:
        topics.append(s.topic_dead_letter)
    await ensure_topics(s, topics)
    consumer = AIOKafkaConsumer(
        *topics,
        **client_options(s),
        group_id=None,
        auto_offset_reset="earliest" if from_beginning else "latest",
    )
    await consumer.start()
    colour = out.isatty() and not raw
    shown = 0
    try:
        async for record in consumer:
            headers = {k: v for k, v in (record.headers or ())}
            line = render_record(record.topic, record.value or b"", headers,
                                 s.topic_dead_letter, raw, colour)
            print(line, file=out, flush=True)
            shown += 1
            if limit is not None and shown >= limit:
                break
    finally:
        await consumer.stop()
    return shown


# --- forget -----------------------------------------------------------------------------

def forget_ids(ids: list[str], file: str | None) -> list[str]:
    """The customer ids to forget: the arguments, then the file's lines (one id a line;
    blank lines and surrounding whitespace ignored), each once, in order."""
    out = list(ids)
    if file is not None:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
        out += [line.strip() for line in text.splitlines() if line.strip()]
    return list(dict.fromkeys(out))


async def forget(s: Settings, ids: list[str], requested_by: str | None) -> list[tuple[str, str]]:
    """Publish one erasure request per customer; (customer id, request id) of each."""
    import uuid
    from datetime import UTC, datetime

    from aiokafka import AIOKafkaProducer

    from schemas.erasure_request import decode_request, request_record
    from streams.kafka.admin import ensure_topics
    from streams.kafka.clients import client_options

    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    records = []
    for cid in ids:
        request_id = str(uuid.uuid4())
        key, value = request_record(cid, request_id, now, requested_by)
        decode_request(value)  # the worker's check, before anything is sent
        records.append((cid, request_id, key, value))
    await ensure_topics(s, [s.topic_erasure_requests])
    producer = AIOKafkaProducer(**client_options(s), acks="all")
    await producer.start()
    try:
        for _, _, key, value in records:
            await producer.send(s.topic_erasure_requests, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    return [(cid, request_id) for cid, request_id, _, _ in records]


# --- local ------------------------------------------------------------------------------

def _stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def local(rate: float, customers: int) -> int:
    """Start everything the embedded default needs; Ctrl-C stops all of it."""
    from streams.kafka.admin import ensure_topics
    from streams.kafka.local_kafka import KafkaToolchainMissing, LocalKafka

    base = _settings()
    workdir = Path(tempfile.mkdtemp(prefix="mot-local-"))
    external = bool(os.environ.get("MOT_KAFKA_BOOTSTRAP_SERVERS"))
    kafka: LocalKafka | None = None
    worker = traffic = None

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        if external:
            bootstrap = base.kafka_bootstrap_servers
            print(f"using the Kafka cluster at {bootstrap}", file=sys.stderr)
        else:
            kafka = LocalKafka(data_dir=workdir / "kafka", log_file=workdir / "kafka.log")
            print("starting a local Kafka broker (first run resolves it with Maven)...",
                  file=sys.stderr, flush=True)
            try:
                bootstrap = kafka.start()
            except KafkaToolchainMissing as exc:
                print(exc, file=sys.stderr)
                return 2
            print(f"Kafka ready at {bootstrap} (log {workdir / 'kafka.log'})", file=sys.stderr)
        # A new topic's partitions answer NotLeaderForPartition for a moment after creation;
        # the client retries by itself, so its log goes to a file, not between the alerts.
        clients_log = workdir / "clients.log"
        logging.basicConfig(level=logging.WARNING, filename=clients_log, force=True,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        env = dict(os.environ, MOT_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
                   MOT_DATA_DIR=str(workdir / "worker"))
        s = Settings.from_env(env)
        asyncio.run(ensure_topics(s))
        worker_log = workdir / "worker.log"
        with open(worker_log, "wb") as log:
            worker = subprocess.Popen([sys.executable, "-m", "streams.worker"], env=env,
                                      stdout=log, stderr=subprocess.STDOUT)
            traffic = subprocess.Popen(
                [sys.executable, "-m", "streams.cli", "generate", "--rate", str(rate),
                 "--customers", str(customers)], env=env)
        print(f"worker started (log {worker_log}, metrics http://{s.web_bind}:{s.web_port}"
              f"/metrics); traffic at {rate:g} events/s; client log {clients_log}. "
              "Alerts follow; Ctrl-C stops.",
              file=sys.stderr, flush=True)
        asyncio.run(tail(s, raw=False, from_beginning=True, dead_letters=True))
    except KeyboardInterrupt:
        print("\nstopping...", file=sys.stderr, flush=True)
    finally:
        _stop(traffic)
        _stop(worker)
        if kafka is not None:
            kafka.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


# --- entry ------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mot", description="Moments-of-truth stream service.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run a stream worker")
    p_local = sub.add_parser("local", help="local Kafka + worker + synthetic traffic + alerts")
    p_local.add_argument("--rate", type=float, default=20.0, help="events per second")
    p_local.add_argument("--customers", type=int, default=200)
    p_gen = sub.add_parser("generate", help="publish synthetic touchpoint events")
    p_gen.add_argument("--rate", type=float, default=20.0, help="events/s; 0 = unthrottled")
    p_gen.add_argument("--count", type=int, default=None, help="stop after N events")
    p_gen.add_argument("--customers", type=int, default=500)
    p_gen.add_argument("--seed", type=int, default=7)
    p_gen.add_argument("--to-file", default=None,
                       help="write --count events to this JSON Lines file (.gz: gzip) instead")
    p_gen.add_argument("--start", default=None, help="with --to-file: first event time (RFC 3339)")
    p_gen.add_argument("--spacing", type=float, default=60.0,
                       help="with --to-file: seconds of event time between events")
    p_tail = sub.add_parser("tail", help="follow the alert topics")
    p_tail.add_argument("--json", action="store_true", help="print raw JSON, one per line")
    p_tail.add_argument("--from-beginning", action="store_true")
    p_tail.add_argument("--dead-letters", action="store_true", help="also the dead-letter topic")
    p_tail.add_argument("--limit", type=int, default=None, help="exit after N records")
    sub.add_parser("topics", help="create the service's topics if missing")
    p_forget = sub.add_parser(
        "forget", help="request the erasure of customers (receipts on the receipts topic)")
    p_forget.add_argument("customer_ids", nargs="*", metavar="CUSTOMER_ID")
    p_forget.add_argument("--file", default=None,
                          help="also the ids in this file, one a line ('-': standard input)")
    p_forget.add_argument("--requested-by", default=None,
                          help="who files the requests (kept in the request, not the receipt)")
    offline.add_parsers(sub)
    from streams.rules_publish import add_parser as add_rules_parser

    add_rules_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "worker":
        try:
            from streams.worker import main as worker_main
        except SettingsError as exc:  # before any connection: say what to set, no traceback
            print(f"mot worker: cannot start: {exc}", file=sys.stderr)
            return 2
        worker_main()
        return 0
    # Client libraries log transient broker conditions (leader moves while topics are
    # created) as warnings; the commands report what matters themselves.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")

    if args.command == "local":
        return local(args.rate, args.customers)
    s = _settings()
    try:
        if args.command in ("replay", "report"):
            return offline.run_replay(args, s, alerts=args.command == "replay")
        if args.command == "produce":
            return offline.run_produce(args, s)
        if args.command == "rules":
            from streams.rules_publish import run_rules

            return run_rules(args, s)
        if args.command == "backtest":
            from streams.offline.backtest import run_backtest

            return run_backtest(args, s)
        if args.command == "generate" and args.to_file:
            if not args.start or not args.count:
                parser.error("--to-file needs --start and --count")
            n = offline.write_sample(args.to_file, args.count, args.customers, args.seed,
                                     args.start, args.spacing)
            print(f"wrote {n} events to {args.to_file}", file=sys.stderr)
        elif args.command == "generate":
            sent = asyncio.run(generate(s, args.rate, args.count, args.customers, args.seed))
            print(f"sent {sent} events to {s.topic_events}", file=sys.stderr)
        elif args.command == "tail":
            asyncio.run(tail(s, args.json, args.from_beginning, args.dead_letters, args.limit))
        elif args.command == "forget":
            from schemas.erasure_request import InvalidRequest

            ids = forget_ids(args.customer_ids, args.file)
            if not ids:
                parser.error("forget needs a CUSTOMER_ID or --file")
            try:
                sent = asyncio.run(forget(s, ids, args.requested_by))
            except InvalidRequest as exc:
                print(f"mot forget: nothing was sent: {exc}", file=sys.stderr)
                return 1
            for cid, request_id in sent:
                print(f"{request_id}\t{cid}")
            print(f"sent {len(sent)} erasure request(s) to {s.topic_erasure_requests}; "
                  f"receipts follow on {s.topic_erasure_receipts}", file=sys.stderr)
        elif args.command == "topics":
            from streams.kafka.admin import ensure_topics

            created = asyncio.run(ensure_topics(s))
            print("created: " + (", ".join(created) if created else "nothing (all exist)"))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
