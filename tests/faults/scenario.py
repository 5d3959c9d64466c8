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
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition

from agents.domain.circles import VICIOUS, VIRTUOUS
from agents.domain.customer_state import CustomerState, decode_state
from agents.domain.drop_off import KIND as DROP_OFF
from agents.domain.drop_off import drop_off_alert
from agents.domain.failed_moment import KIND as FAILED_MOMENT
from agents.domain.journeys import expire_journeys
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record
from agents.domain.touchpoint_status import KIND as TOUCHPOINT_STATUS
from streams.settings import Settings
from tests.harness import WorkerProcess, metric_value, service_env

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


# Event time advances by SPACING_S per event of the whole stream, so every customer's
# clock (and each partition's watermark) moves with the stream: an active customer is
# never silent for anything near the journey timeout, a customer who stops early is.
SPACING_S = 2.5
TOUCHPOINTS = [("checkout.payment", "web"), ("web.search", "app"), ("support.phone", "phone")]
MIXED: list[dict[str, Any]] = [
    {"outcome": "success"}, {"outcome": "delight"}, {"csat": 5}, {"csat": 4},
    {"ces": 6}, {"nps": 9}, {"csat": 1}, {"csat": 2}, {"outcome": "failure"},
    {"duration_s": 300, "expected_duration_s": 60}, {"sentiment": 0.3},
]
BAD: list[dict[str, Any]] = [{"csat": 1}, {"csat": 2}, {"outcome": "failure"},
                             {"duration_s": 300, "expected_duration_s": 60}]
GOOD: list[dict[str, Any]] = [{"outcome": "success"}, {"csat": 4}, {"nps": 9}, {"ces": 6}]
DELIGHT: dict[str, Any] = {"outcome": "delight"}
# Customer profiles (customer number modulo 4), so that every alert kind occurs:
# mixed (failed moments, vicious circles), rough (long chains: escalations),
# recovering (three failures, then delights: a vicious circle opens and resolves),
# happy (delights only: a virtuous circle, ended by one failure late in the stream).
# From 45% to 55% of the stream checkout.payment fails: mixed and rough customers go
# there and fail, the others go elsewhere (an incident for the touchpoint andon).
PROFILES = ("mixed", "rough", "recovering", "happy")
ABANDON = {"mixed": 0.3, "rough": 0.5, "recovering": 0.0, "happy": 0.0}
# Every SILENT_EVERY-th customer speaks only at the start of the stream (SILENT_EVENTS
# events of one journey that never ends): the worker's silence timer drops it.
SILENT_EVERY = 10
SILENT_EVENTS = 3


def is_silent(c: int) -> bool:
    return c % SILENT_EVERY == SILENT_EVERY - 1


def make_events(n: int, customers: int, seed: int, prefix: str = "e") -> list[dict[str, Any]]:
    """``n`` valid events over ``customers`` customers, interleaved at random (seeded);
    each customer's events in event-time order, all within the last day (none late, none
    in the future). Customers are on journeys (3 to 6 moments, ended or abandoned) and
    follow the profiles above, so the stream raises failed-moment, vicious- and
    virtuous-circle and drop-off alerts (abandoned, and silent journeys)."""
    rnd = random.Random(seed)
    base = int(time.time()) - 86400
    silent = [c for c in range(customers) if is_silent(c)]
    active = [c for c in range(customers) if not is_silent(c)]
    who = [rnd.choice(active) for _ in range(n)]
    early = n // 20  # the silent customers' events fall in the first 5% of the stream
    assert early >= SILENT_EVENTS * len(silent), "too few events for the silent customers"
    for j, i in enumerate(sorted(rnd.sample(range(early), SILENT_EVENTS * len(silent)))):
        who[i] = silent[j % len(silent)]
    count = [0] * customers  # events so far, per customer
    journeys = [0] * customers  # journeys opened, per customer
    left = [0] * customers  # moments left in the current journey (0: none open)
    failed_once = [False] * customers  # a happy customer's one failure is behind them
    incident = (n * 45 // 100, n * 55 // 100)
    out = []
    for i, c in enumerate(who):
        profile = PROFILES[c % len(PROFILES)]
        k = count[c]
        count[c] += 1
        if left[c] == 0:
            journeys[c] += 1
            left[c] = rnd.randint(3, 6)
        left[c] -= 1
        if is_silent(c) or profile == "mixed":
            signal = rnd.choice(MIXED)
        elif profile == "rough":
            signal = rnd.choice(BAD) if rnd.random() < 0.5 else rnd.choice(GOOD)
        elif profile == "recovering":
            signal = {"csat": 2} if k < 3 else DELIGHT
        elif i >= 2 * n // 3 and not failed_once[c]:  # happy: one failure, late
            signal = {"outcome": "failure"}
            failed_once[c] = True
        else:
            signal = DELIGHT
        touchpoint, channel = rnd.choice(TOUCHPOINTS)
        if incident[0] <= i < incident[1]:  # checkout.payment fails for everyone there
            if profile in ("mixed", "rough"):
                (touchpoint, channel), signal = TOUCHPOINTS[0], {"outcome": "failure"}
            else:
                touchpoint, channel = rnd.choice(TOUCHPOINTS[1:])
        event: dict[str, Any] = {
            "event_id": f"{prefix}-{seed}-{i}", "customer_id": f"c-{c:04d}",
            "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                         time.gmtime(base + i * SPACING_S)),
            "touchpoint": touchpoint, "channel": channel,
            "journey_id": f"c-{c:04d}-j{journeys[c]}", "journey": "purchase", **signal,
        }
        if left[c] == 0 and not is_silent(c):
            if rnd.random() < ABANDON[profile]:
                event = {k2: v for k2, v in event.items() if k2 not in SIGNAL_FIELDS}
                event["outcome"] = "abandoned"
            else:
                event["attributes"] = {"journey_end": True}
        out.append(event)
    return out


SIGNAL_FIELDS = frozenset({"outcome", "csat", "ces", "nps", "sentiment", "duration_s",
                           "expected_duration_s"})


def record(event: dict[str, Any]) -> tuple[bytes, bytes]:
    return event["customer_id"].encode(), orjson.dumps(event)


# The kinds compared with the fault-free outcome, as printed; drop-offs are split by
# trigger: an abandoned journey is decided by a record (as the replay decides it), a
# silent one by the worker's timer.
ABANDONED = f"{DROP_OFF}/abandoned"
SILENT = f"{DROP_OFF}/timeout"
PREDICTED = (FAILED_MOMENT, VICIOUS, VIRTUOUS, ABANDONED, SILENT)
# Touchpoint status is judged on batches of moments gathered across the customers'
# partitions, so the order in which a touchpoint sees them (and so its transitions)
# depends on the workers' timing: no replay predicts it. For it the tests check only
# what holds whatever the timing: one content per alert id, and transitions numbered
# 1..n per touchpoint with none missing.
STATUS = TOUCHPOINT_STATUS
# Which topic (its MOT_ variable) carries which kind.
TOPIC_OF = {FAILED_MOMENT: "MOT_TOPIC_ALERTS_FAILED_MOMENT", VICIOUS: "MOT_TOPIC_ALERTS_CIRCLES",
            VIRTUOUS: "MOT_TOPIC_ALERTS_CIRCLES", DROP_OFF: "MOT_TOPIC_ALERTS_DROP_OFF",
            STATUS: "MOT_TOPIC_ALERTS_TOUCHPOINT_STATUS"}
# The fields a silent journey's drop-off takes from the timer's clock, not from records.
CLOCK_FIELDS = frozenset({"detected_at", "silent_for_s"})


def kind_of(alert: dict[str, Any]) -> str:
    kind = alert["kind"]
    return f"{kind}/{alert['trigger']}" if kind == DROP_OFF else kind


@dataclass
class Expected:
    """The fault-free outcome: final score and moment count per customer, and the
    alerts, by id, of every predicted kind."""

    scores: dict[str, float]
    moments: dict[str, int]
    alerts: dict[str, dict[str, Any]]  # alert_id -> alert

    def ids(self, kind: str) -> set[str]:
        return {aid for aid, a in self.alerts.items() if kind_of(a) == kind}


def fault_free(events: list[dict[str, Any]], settings: Settings | None = None) -> Expected:
    """Run ``events`` through the worker's own per-record function, without Kafka, then
    through the silence check at the stream's last event time (what the worker's timer
    finds once every partition's clock has passed it)."""
    s = settings or Settings.from_env({})
    cfg = ModelConfig.from_settings(s)
    states: dict[str, CustomerState] = {}
    alerts: dict[str, dict[str, Any]] = {}
    now = time.time()
    for e in events:
        key, value = record(e)
        done = process_record(value, key, states.get, cfg, s.max_record_bytes, now)
        assert done.rejected is None and done.rekey is None, done.rejected
        if done.state is not None:
            states[e["customer_id"]] = done.state
        for out in done.outputs:
            alerts[out.value["alert_id"]] = out.value
    end = max(datetime.fromisoformat(e["occurred_at"]).timestamp() for e in events)
    # Journeys are silent well before the end, or active until near it: none in between,
    # so the timer's exact clock (the partition's latest event time, plus idle time)
    # cannot change which journeys it drops.
    margin = 900.0
    for cid, st in states.items():
        dropped = {}
        for mark in (end - margin, end, end + margin):
            _, change = expire_journeys(st.journeys, mark, cfg.journeys)
            dropped[mark] = change.dropped
        assert [d.journey_id for d in dropped[end - margin]] == \
               [d.journey_id for d in dropped[end + margin]], f"{cid}: journey near the timeout"
        for d in dropped[end]:
            alert = drop_off_alert(cid, d, cfg.journeys, cfg.quality.failed_threshold,
                                   cfg.quality.red_quality, now)
            alerts[alert["alert_id"]] = alert
    expected = Expected({c: st.score for c, st in states.items()},
                        {c: st.moments for c, st in states.items()}, alerts)
    for kind in PREDICTED:  # the traffic exercises every kind the tests compare
        assert expected.ids(kind), f"the scenario's traffic raises no {kind} alert"
    return expected


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
    """Every record now in ``topic`` (to its current end), as ``(key, value)``; a read
    not at the end in ``timeout`` seconds raises. ``read_committed`` hides records of
    aborted transactions, as a downstream consumer of an exactly-once producer must."""
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
        if remaining:  # figures from part of the topic would read as lost alerts
            short = ", ".join(f"{tp.partition}: {await consumer.position(tp)} of {ends[tp]}"
                              for tp in sorted(remaining))
            raise TimeoutError(f"{topic} not read to its end in {timeout:g} s ({short})")
    finally:
        await consumer.stop()
    return out


@dataclass
class KindFigures:
    """One alert kind on its topic, against the fault-free outcome (``expected`` is
    None for a kind no replay predicts)."""

    kind: str
    expected: int | None
    found: int = 0  # distinct ids present (of the expected ones, when predicted)
    duplicated: int = 0  # records beyond the first of their id
    unexpected: int = 0  # ids present that the fault-free run did not raise
    conflicting: int = 0  # ids present with more than one content (detected_at aside)
    mismatched: int = 0  # ids present whose content differs from the fault-free one
    context_cut: int = 0  # failed-moment copies re-sent with only part of recent_moments
    gaps: int = 0  # touchpoint status: touchpoints whose transitions are not 1..n

    @property
    def lost(self) -> int:
        return 0 if self.expected is None else self.expected - self.found

    def row(self) -> str:
        expected = "-" if self.expected is None else str(self.expected)
        return (f"    {self.kind:<22} expected={expected:<5} found={self.found:<5} "
                f"lost={self.lost:<3} duplicated={self.duplicated:<4} "
                f"unexpected={self.unexpected} conflicting={self.conflicting} "
                f"mismatched={self.mismatched}"
                + (f" context_cut={self.context_cut}" if self.kind == FAILED_MOMENT
                   else "")
                + (f" gaps={self.gaps}" if self.kind == STATUS else ""))


@dataclass
class Figures:
    """What a downstream consumer sees, against the fault-free outcome."""

    name: str
    sent: int
    processed: int  # moments counted in the final table state (the changelog)
    kinds: dict[str, KindFigures]
    score_mismatches: list[str] = field(default_factory=list)
    alert_problems: list[str] = field(default_factory=list)  # examples, for the assertions
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def alerts_lost(self) -> int:
        return sum(k.lost for k in self.kinds.values())

    @property
    def alerts_duplicated(self) -> int:
        return sum(k.duplicated for k in self.kinds.values())

    @property
    def converged(self) -> bool:
        return (self.processed == self.sent and self.alerts_lost == 0
                and not self.score_mismatches)

    def row(self) -> str:
        extra = "  ".join(f"{k}={v}" for k, v in {"guarantee": GUARANTEE,
                                                  "batches": BATCH_DELIVERY,
                                                  **self.notes}.items())
        head = (f"{self.name:<34} sent={self.sent:<6} processed={self.processed:<6} "
                f"alerts lost={self.alerts_lost} duplicated={self.alerts_duplicated} "
                f"score_mismatches={len(self.score_mismatches)}  {extra}").rstrip()
        return "\n".join([head, *(k.row() for k in self.kinds.values())])


def _content(alert: dict[str, Any]) -> bytes:
    """An alert without what the moment of detection decides, for comparison. A
    failed-moment alert is compared without its ``recent_moments``: a copy re-sent for a
    duplicate has only those of its context the customer's state still keeps (its last
    ``MOT_RECENT_MOMENTS``): the newest part, none for an older moment.
    :func:`compare_alerts` checks that part apart."""
    loose = CLOCK_FIELDS if kind_of(alert) == SILENT else {"detected_at"}
    if alert["kind"] == FAILED_MOMENT:
        loose = {*loose, "recent_moments"}
    return orjson.dumps({k: v for k, v in alert.items() if k not in loose},
                        option=orjson.OPT_SORT_KEYS)


async def read_alerts(bootstrap: str, env: dict[str, str], *, read_committed: bool
                      ) -> dict[str, list[dict[str, Any]]]:
    """Every record of every alert topic, by kind; a record on the wrong topic for its
    kind is put under ``"<kind> on <topic>"`` so it counts as unexpected."""
    out: dict[str, list[dict[str, Any]]] = {}
    for var in dict.fromkeys(TOPIC_OF.values()):
        for _, value in await read_topic(bootstrap, env[var], read_committed=read_committed):
            alert = orjson.loads(value or b"null")
            kind = kind_of(alert)
            if TOPIC_OF.get(alert["kind"]) != var:
                kind = f"{kind} on {var}"
            out.setdefault(kind, []).append(alert)
    return out


def compare_alerts(expected: Expected, found: dict[str, list[dict[str, Any]]]
                   ) -> tuple[dict[str, KindFigures], list[str]]:
    """Per kind: ids expected, present, lost, duplicated, unexpected, with conflicting
    or wrong content."""
    kinds: dict[str, KindFigures] = {}
    problems: list[str] = []
    for kind in [*PREDICTED, STATUS, *sorted(set(found) - {*PREDICTED, STATUS})]:
        want = expected.ids(kind) if kind in PREDICTED else None
        records = found.get(kind, [])
        contents: dict[str, set[bytes]] = {}
        for alert in records:
            contents.setdefault(alert["alert_id"], set()).add(_content(alert))
        kf = KindFigures(kind, None if want is None else len(want))
        kf.duplicated = len(records) - len(contents)
        for aid, seen in contents.items():
            if len(seen) > 1:
                kf.conflicting += 1
                problems.append(f"{kind} {aid}: {len(seen)} different contents")
            if want is None:
                continue
            if aid not in want:
                kf.unexpected += 1
                problems.append(f"{kind} {aid}: not raised without faults")
            elif seen != {_content(expected.alerts[aid])}:
                kf.mismatched += 1
                problems.append(f"{kind} {aid}: content differs from the fault-free one")
        if kind == FAILED_MOMENT:
            for alert in records:
                want_alert = expected.alerts.get(alert["alert_id"])
                if want_alert is None or alert["recent_moments"] == want_alert["recent_moments"]:
                    continue
                got, full = alert["recent_moments"], want_alert["recent_moments"]
                if full[len(full) - len(got):] == got:  # the newest part of the context
                    kf.context_cut += 1
                else:
                    kf.mismatched += 1
                    problems.append(f"{kind} {alert['alert_id']}: other recent_moments")
        kf.found = len(contents) if want is None else len(want & contents.keys())
        if kind == STATUS:
            gaps = _status_gaps(records)
            kf.gaps = len(gaps)
            problems.extend(gaps)
        kinds[kind] = kf
    return kinds, problems


def _status_gaps(records: list[dict[str, Any]]) -> list[str]:
    """Touchpoints whose transitions are not numbered 1..n (a transition alert missing)."""
    seqs: dict[str, set[int]] = {}
    for alert in records:
        seqs.setdefault(alert["touchpoint"], set()).add(alert["transition"])
    return [f"{STATUS} {tp}: transitions {sorted(s)} not 1..{len(s)}"
            for tp, s in seqs.items() if s != set(range(1, len(s) + 1))]


async def measure(name: str, bootstrap: str, env: dict[str, str], expected: Expected,
                  sent: int, *, read_committed: bool = READ_COMMITTED) -> Figures:
    """Compare every alert topic and the table's changelog with ``expected``."""
    found = await read_alerts(bootstrap, env, read_committed=read_committed)
    kinds, problems = compare_alerts(expected, found)
    changelog = await read_topic(bootstrap, f"{env['MOT_APP_ID']}-customer-state-changelog",
                                 read_committed=read_committed)
    state: dict[str, Any] = {}
    for key, value in changelog:
        if key is not None:
            state[orjson.loads(key)] = decode_state(value) if value else None
    mismatches = []
    for cid, score in expected.scores.items():
        st = state.get(cid)
        if st is None or abs(st.score - score) > 1e-9 * max(1.0, abs(score)):
            mismatches.append(f"{cid}: {None if st is None else st.score} != {score}")
        elif st.moments != expected.moments[cid]:
            mismatches.append(f"{cid}: {st.moments} moments != {expected.moments[cid]}")
    return Figures(
        name=name, sent=sent,
        processed=sum(st.moments for st in state.values() if st),
        kinds=kinds, score_mismatches=mismatches, alert_problems=problems)


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


def assert_delivered(figures: Figures) -> None:
    """The delivery promise, per kind: nothing lost, nothing raised that the fault-free
    run did not raise, one content per id and that content the fault-free one; the
    table's final scores and moment counts those of the fault-free run.

    Touchpoint status is not predicted (see :data:`STATUS`), but its transitions must be
    numbered 1..n per touchpoint with one content per id, also where a worker is killed
    (each observation counts once, by its input position). The soak
    (``tests/soak/soak.py``) checks the andon under ``kill -9`` further: moments counted
    per touchpoint and the final windows.
    """
    row = figures.row()
    problems = figures.alert_problems[:5]
    for kind in PREDICTED:
        kf = figures.kinds[kind]
        assert kf.expected, f"no {kind} alert expected:\n{row}"
        assert kf.lost == 0, f"{kind} lost:\n{row}"
        assert kf.unexpected == kf.conflicting == kf.mismatched == 0, (row, problems)
    assert set(figures.kinds) == {*PREDICTED, STATUS}, f"alerts on a wrong topic:\n{row}"
    status = figures.kinds[STATUS]
    assert status.conflicting == status.gaps == 0, (row, problems)
    assert figures.processed == figures.sent, row
    assert not figures.score_mismatches, figures.score_mismatches[:5]


def sample_customers(expected: Expected) -> list[str]:
    """Every fifth customer (all profiles) and the first silent one."""
    ids = sorted(expected.scores)
    silent = [cid for cid in ids if is_silent(int(cid.split("-")[1]))]
    return [*ids[::5], *silent[:1]]


def served_mismatches(worker: WorkerProcess, expected: Expected, customers: list[str]
                      ) -> list[str]:
    """Customers whose ``GET /customers/{id}`` (the table as the worker serves it, routed
    to the partition's owner) differs from the fault-free score or moment count."""
    out = []
    for cid in customers:
        status, body = worker.get(f"/customers/{cid}")
        if status != 200:
            out.append(f"{cid}: HTTP {status}")
            continue
        view = orjson.loads(body)
        if abs(view["score"] - round(expected.scores[cid], 6)) > 1e-6 \
                or view["moments"] != expected.moments[cid]:
            out.append(f"{cid}: served {view['score']} ({view['moments']} moments) != "
                       f"{expected.scores[cid]:.6f} ({expected.moments[cid]})")
    return out


async def check_served(figures: Figures, expected: Expected, *workers: WorkerProcess,
                       timeout: float = 30.0) -> list[str]:
    """Ask each worker's ``GET /customers/{id}`` (the restored table as the service shows
    it, routed to the partition's owner) for a sample of customers, until it gives the
    fault-free scores or ``timeout`` passes; what still differs (empty: nothing)."""
    customers = sample_customers(expected)
    wrong: list[str] = []
    for worker in workers:
        deadline = time.monotonic() + timeout
        while True:
            wrong_here = await asyncio.to_thread(served_mismatches, worker, expected, customers)
            if not wrong_here or time.monotonic() > deadline:
                break
            await asyncio.sleep(1.0)
        wrong += wrong_here
    figures.notes.update(served_checked=len(customers) * len(workers), served_wrong=len(wrong))
    return wrong


def consumed(worker: WorkerProcess) -> float:
    """Records the worker consumed since it started (0 while it is not serving)."""
    try:
        return metric_value(worker.metrics(), "mot_events_consumed_total")
    except OSError:
        return 0.0


def owned_partitions(worker: WorkerProcess, topic: str) -> set[int]:
    """Partitions of ``topic`` the worker owns now, as its lag gauge exports them (one
    series per owned partition; empty while it is not serving)."""
    try:
        text = worker.metrics()
    except OSError:
        return set()
    owned = set()
    for line in text.splitlines():
        if line.startswith("mot_consumer_lag_messages{"):
            labels = dict(pair.split("=", 1) for pair in
                          line[line.index("{") + 1:line.index("}")].split(","))
            if labels.get("topic") == f'"{topic}"':
                owned.add(int(labels["partition"].strip('"')))
    return owned


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
