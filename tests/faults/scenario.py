"""What the fault tests share: a deterministic event stream, its fault-free outcome,
and the figures that compare what Kafka holds after a fault with that outcome.

The fault-free outcome is the same records run through
:func:`agents.domain.moment_processor.process_record`, the function the worker runs:
the stream and a replay of the same records in the same per-customer order cannot
disagree, so any difference after a fault is the fault's doing.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from agents.domain.failed_moment import KIND as FAILED_MOMENT
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record
from streams.settings import Settings
from tests.harness import WorkerProcess, metric_value, service_env

SIGNALS: list[dict[str, Any]] = [
    {"outcome": "success"}, {"outcome": "delight"}, {"csat": 5}, {"csat": 4},
    {"ces": 6}, {"nps": 9}, {"csat": 1}, {"csat": 2}, {"outcome": "failure"},
    {"duration_s": 300, "expected_duration_s": 60}, {"sentiment": 0.3},
]


# The fault tests hold the one guarantee the service offers (exactly_once is refused at
# start); alerts are read as a downstream consumer with the default isolation would.
GUARANTEE = Settings.from_env({}).processing_guarantee
READ_COMMITTED = False
# MOT_TEST_BATCH_DELIVERY=false runs them with the input delivered record by record.
BATCH_DELIVERY = os.environ.get("MOT_TEST_BATCH_DELIVERY",
                                str(Settings.from_env({}).batch_delivery).lower())


def fault_env(bootstrap: str, data_dir: Any, **overrides: Any) -> dict[str, str]:
    """A test worker's environment; a killed member is noticed after 8 s, not 30."""
    return service_env(bootstrap, data_dir, MOT_KAFKA_SESSION_TIMEOUT_S="8",
                       MOT_PROCESSING_GUARANTEE=GUARANTEE, MOT_BATCH_DELIVERY=BATCH_DELIVERY,
                       **overrides)


def make_events(n: int, customers: int, seed: int, prefix: str = "e") -> list[dict[str, Any]]:
    """``n`` valid events over ``customers`` customers, interleaved at random; each
    customer's events in event-time order, all within the last day (none late, none
    in the future), about a third of them failed moments."""
    rnd = random.Random(seed)
    base = int(time.time()) - 86400
    clock = [0] * customers
    out = []
    for i in range(n):
        c = rnd.randrange(customers)
        clock[c] += rnd.randint(1, 30)
        out.append({
            "event_id": f"{prefix}-{seed}-{i}", "customer_id": f"c-{c:04d}",
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                         time.gmtime(base + clock[c])),
            "touchpoint": rnd.choice(["checkout.payment", "web.search", "support.phone"]),
            "channel": rnd.choice(["web", "app", "phone"]),
            **rnd.choice(SIGNALS),
        })
    return out


def record(event: dict[str, Any]) -> tuple[bytes, bytes]:
    return event["customer_id"].encode(), orjson.dumps(event)


@dataclass
class Expected:
    """The fault-free outcome: final score and moment count per customer, alert ids."""

    scores: dict[str, float]
    moments: dict[str, int]
    alerts: dict[str, dict[str, Any]]  # alert_id -> alert


def fault_free(events: list[dict[str, Any]], settings: Settings | None = None) -> Expected:
    """Run ``events`` through the worker's own per-record function, without Kafka."""
    s = settings or Settings.from_env({})
    cfg = ModelConfig.from_settings(s)
    states: dict[str, dict[str, Any]] = {}
    alerts: dict[str, dict[str, Any]] = {}
    now = time.time()
    for e in events:
        key, value = record(e)
        done = process_record(value, key, states.get, cfg, s.max_record_bytes, now)
        assert done.rejected is None and done.rekey is None, done.rejected
        if done.state is not None:
            states[e["customer_id"]] = done.state
        for out in done.outputs:
            if out.kind == FAILED_MOMENT:
                alerts[out.value["alert_id"]] = out.value
    return Expected({c: st["score"] for c, st in states.items()},
                    {c: st["moments"] for c, st in states.items()}, alerts)


async def produce_paced(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]],
                        rate: float, sent: list[int] | None = None) -> int:
    """Produce at about ``rate`` records/s (acks=all), like a live system would;
    ``sent[0]`` follows the count so a test can act mid-stream."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                request_timeout_ms=120_000, retry_backoff_ms=500)
    await producer.start()
    began = time.monotonic()
    try:
        futures = []
        for i, (key, value) in enumerate(records):
            futures.append(await producer.send(topic, value, key=key))
            if sent is not None:
                sent[0] = i + 1
            ahead = (i + 1) / rate - (time.monotonic() - began)
            if ahead > 0:
                await asyncio.sleep(ahead)
        await producer.flush()
        for f in futures:
            await f  # every record acknowledged by the broker, or the test fails here
    finally:
        await producer.stop()
    return len(records)


async def read_topic(bootstrap: str, topic: str, *, read_committed: bool = False,
                     timeout: float = 30.0) -> list[tuple[bytes | None, bytes | None]]:
    """Every record now in ``topic`` (to its current end), as ``(key, value)``.
    ``read_committed`` hides records of aborted transactions, as a downstream
    consumer of an exactly-once producer must."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed" if read_committed else "read_uncommitted")
    await consumer.start()
    out: list[tuple[bytes | None, bytes | None]] = []
    try:
        deadline = time.monotonic() + timeout
        parts = consumer.partitions_for_topic(topic)
        while not parts and time.monotonic() < deadline:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic)
            if not parts:
                await asyncio.sleep(0.2)
        if not parts:
            return out
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # The end as of now; under read_committed, the last stable offset.
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        while remaining and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            for recs in batch.values():
                out.extend((r.key, r.value) for r in recs)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()
    return out


@dataclass
class Figures:
    """What a downstream consumer sees, against the fault-free outcome."""

    name: str
    sent: int
    processed: int  # moments counted in the final table state (the changelog)
    alerts_expected: int
    alerts_found: int  # distinct expected alert ids present
    alerts_duplicated: int  # alert records beyond the first of their id
    alerts_lost: int
    alerts_unexpected: int
    score_mismatches: list[str] = field(default_factory=list)
    alert_mismatches: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def converged(self) -> bool:
        return (self.processed == self.sent and self.alerts_lost == 0
                and not self.score_mismatches)

    def row(self) -> str:
        extra = "  ".join(f"{k}={v}" for k, v in {"guarantee": GUARANTEE,
                                                  "batches": BATCH_DELIVERY,
                                                  **self.notes}.items())
        return (f"{self.name:<34} sent={self.sent:<6} processed={self.processed:<6} "
                f"alerts expected={self.alerts_expected:<5} found={self.alerts_found:<5} "
                f"duplicated={self.alerts_duplicated:<4} lost={self.alerts_lost:<3} "
                f"unexpected={self.alerts_unexpected} score_mismatches="
                f"{len(self.score_mismatches)}  {extra}").rstrip()


async def measure(name: str, bootstrap: str, env: dict[str, str], expected: Expected,
                  sent: int, *, read_committed: bool = READ_COMMITTED) -> Figures:
    """Compare the alert topic and the table's changelog with ``expected``."""
    alert_records = await read_topic(bootstrap, env["MOT_TOPIC_ALERTS_FAILED_MOMENT"],
                                     read_committed=read_committed)
    ids = Counter()
    first: dict[str, dict[str, Any]] = {}
    alert_mismatches = []
    for _, value in alert_records:
        alert = orjson.loads(value or b"null")
        aid = alert["alert_id"]
        ids[aid] += 1
        first.setdefault(aid, alert)
        want = expected.alerts.get(aid)
        if want is not None and (
                abs(alert["score_after"] - want["score_after"]) > 1e-6
                or alert["event_id"] != want["event_id"]):
            alert_mismatches.append(f"{aid}: {alert['score_after']} != {want['score_after']}")
    changelog = await read_topic(bootstrap, f"{env['MOT_APP_ID']}-customer-state-changelog",
                                 read_committed=read_committed)
    state: dict[str, Any] = {}
    for key, value in changelog:
        if key is not None:
            state[orjson.loads(key)] = orjson.loads(value) if value else None
    mismatches = []
    for cid, score in expected.scores.items():
        st = state.get(cid)
        if st is None or abs(st["score"] - score) > 1e-9 * max(1.0, abs(score)):
            mismatches.append(f"{cid}: {None if st is None else st['score']} != {score}")
        elif st["moments"] != expected.moments[cid]:
            mismatches.append(f"{cid}: {st['moments']} moments != {expected.moments[cid]}")
    found = sum(1 for aid in expected.alerts if aid in ids)
    return Figures(
        name=name, sent=sent,
        processed=sum(st["moments"] for st in state.values() if st),
        alerts_expected=len(expected.alerts), alerts_found=found,
        alerts_duplicated=sum(n - 1 for n in ids.values()),
        alerts_lost=len(expected.alerts) - found,
        alerts_unexpected=sum(1 for aid in ids if aid not in expected.alerts),
        score_mismatches=mismatches, alert_mismatches=alert_mismatches)


async def converge(name: str, bootstrap: str, env: dict[str, str], expected: Expected,
                   sent: int, *, timeout: float = 120.0, settle: float = 4.0,
                   read_committed: bool = READ_COMMITTED) -> Figures:
    """Measure until the outcome matches ``expected`` (then ``settle`` seconds more,
    so late duplicates are counted too) or ``timeout`` passes; the last figures."""
    deadline = time.monotonic() + timeout
    while True:
        figures = await measure(name, bootstrap, env, expected, sent,
                                read_committed=read_committed)
        if figures.converged or time.monotonic() > deadline:
            break
        await asyncio.sleep(1.0)
    if figures.converged and settle:
        await asyncio.sleep(settle)
        figures = await measure(name, bootstrap, env, expected, sent,
                                read_committed=read_committed)
    return figures


def consumed(worker: WorkerProcess) -> float:
    """Records the worker consumed since it started (0 while it is not serving)."""
    try:
        return metric_value(worker.metrics(), "mot_events_consumed_total")
    except OSError:
        return 0.0


async def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def report(capsys: Any, *lines: str) -> None:
    """Write figures to the terminal even when pytest captures output."""
    ctx: AbstractContextManager[Any] = capsys.disabled() if capsys is not None else nullcontext()
    with ctx:
        for line in lines:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()


def chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i:i + n]
