"""Micro-benchmark: the domain alone, with the state encoded as the table stores it.

    python bench/domain.py                    # 100k events, 10k customers
    python bench/domain.py --events 20000     # quicker

One core, no Kafka: every event goes through
``agents.domain.moment_processor.process_record`` with the customer's state decoded from
bytes before and encoded to bytes after, as the service's table does
(``agents.domain.customer_state``'s codec). The events are the benchmark's own
(:func:`bench.run.make_events`). This is the floor under every contestant of
``bench/run.py``: a worker cannot be faster than its job.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agents.domain.customer_state import decode_state, encode_state  # noqa: E402
from agents.domain.moment_processor import process_record  # noqa: E402
from bench.job import MAX_BYTES, MODEL  # noqa: E402
from bench.run import make_events  # noqa: E402


def run(records: list[tuple[bytes, bytes]]) -> dict[str, float]:
    """Process ``records`` once from empty state; events/s of CPU time on this core."""
    table: dict[str, bytes] = {}

    def state_of(customer_id: str) -> Any:
        raw = table.get(customer_id)
        return None if raw is None else decode_state(raw)

    now = time.time()
    outputs = 0
    t0 = time.process_time()
    for i, (key, value) in enumerate(records):
        done = process_record(value, key, state_of, MODEL, MAX_BYTES, now, (0, i))
        if done.state is not None:
            table[done.customer_id] = encode_state(done.state)  # type: ignore[index]
        outputs += len(done.outputs)
    cpu = time.process_time() - t0
    sizes = sorted(len(v) for v in table.values())
    return {"events": len(records), "cpu_s": cpu, "events_per_s": len(records) / cpu,
            "us_per_event": cpu * 1e6 / len(records), "alerts": outputs,
            "state_median_b": statistics.median(sizes),
            "state_p90_b": sizes[int(0.9 * len(sizes))],
            "state_mb_per_1m": sum(sizes) / len(sizes)}  # mean B × 1M customers / 1e6


def plumbing(records: list[tuple[bytes, bytes]], batch: int = 500) -> dict[str, float]:
    """µs per event of two parts of the worker's plumbing that need no Kafka, measured on
    the domain's own outputs: the metrics (counted per event with a label look-up each,
    as the agent did, and per batch with :class:`streams.metrics.Tally`), and the
    andon's observation path (buffered per touchpoint, encoded, decoded and judged)."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from agents.domain.touchpoint_observations import ObservationBuffer, decode_batch
    from agents.domain.touchpoint_status import judge_batch
    from streams import metrics as m

    table: dict[str, Any] = {}
    dones = []
    now = time.time()
    for i, (key, value) in enumerate(records):
        done = process_record(value, key, table.get, MODEL, MAX_BYTES, now, (0, i))
        if done.state is not None:
            table[done.customer_id] = done.state  # type: ignore[index]
        dones.append(done)

    reg = CollectorRegistry()
    consumed = Counter("c_total", "c", registry=reg)
    valid = Counter("v_total", "v", registry=reg)
    failed = Counter("f_total", "f", ["touchpoint", "channel"], registry=reg)
    alerts = Counter("a_total", "a", ["kind"], registry=reg)
    score = Histogram("s", "s", buckets=(-12, -3, 0, 3, 12), registry=reg)
    latency = Histogram("l", "l", buckets=(0.001, 0.01, 0.1), registry=reg)

    t0 = time.process_time()
    for d in dones:
        consumed.inc()
        if d.result is None:
            continue
        valid.inc()
        score.observe(d.result.score_after)
        if d.result.failed:
            failed.labels(d.event.touchpoint, d.event.channel or "").inc()
        for out in d.outputs:
            alerts.labels(out.kind).inc()
        latency.observe(0.002)
    per_event = time.process_time() - t0

    score = m.LoopHistogram("s2", "s", buckets=(-12, -3, 0, 3, 12), registry=reg)
    latency = m.LoopHistogram("l2", "l", buckets=(0.001, 0.01, 0.1), registry=reg)
    t0 = time.process_time()
    tally = m.Tally()
    for i, d in enumerate(dones):
        tally.inc(consumed)
        if d.result is not None:
            tally.inc(valid)
            tally.observe(score, d.result.score_after)
            if d.result.failed:
                tally.inc(m.child(failed, d.event.touchpoint, d.event.channel or ""))
            for out in d.outputs:
                tally.inc(m.child(alerts, out.kind))
            tally.observe(latency, 0.002)
        if i % batch == batch - 1:
            tally.apply()
    tally.apply()
    per_batch = time.process_time() - t0

    buffer = ObservationBuffer(1000)
    sent: list[bytes] = []
    t0 = time.process_time()
    for d in dones:
        o = d.observation
        if o is not None and buffer.add(o.touchpoint, o.at, o.failed, o.event_id, o.position):
            value = buffer.take(o.touchpoint)
            if value is not None:
                sent.append(value)
    sent.extend(v for _, v in buffer.drain())
    buffered = time.process_time() - t0
    t0 = time.process_time()
    states: dict[int, Any] = {}
    for i, value in enumerate(sent):  # the andon: a state per touchpoint (here per record)
        judged = judge_batch(states.get(i), decode_batch(value), MODEL.status)
        states[i] = judged.state
    judged_s = time.process_time() - t0
    n = len(records)
    return {"metrics_per_event_us": per_event * 1e6 / n,
            "metrics_per_batch_us": per_batch * 1e6 / n,
            "andon_buffer_us": buffered * 1e6 / n, "andon_judge_us": judged_s * 1e6 / n,
            "andon_records": len(sent)}


def silence_check(customers: int, due: int) -> dict[str, float]:
    """The silence check's read at ``customers`` customers with open journeys, ``due`` of
    them due: the ``journey-due`` index read in key order up to the first entry not due,
    against the scan of every ``journey-deadlines`` entry (the check before the index).
    Both on a RocksDB database of their own, as one partition's store holds them."""
    import orjson
    import rocksdict

    from agents.domain.journey_index import (
        DEADLINE_CODEC,
        DUE_CODEC,
        DueEntry,
        JourneyDeadline,
        due_key,
        due_key_ms,
        due_ms,
    )

    base = 1_767_225_600.0
    mark = base + due - 0.5  # the first ``due`` deadlines, one a second, have passed
    with tempfile.TemporaryDirectory() as tmp:
        by_customer = rocksdict.Rdict(f"{tmp}/deadlines", options=rocksdict.Options(raw_mode=True))
        by_deadline = rocksdict.Rdict(f"{tmp}/due", options=rocksdict.Options(raw_mode=True))
        for i in range(customers):
            cid, deadline = f"c-{i:07d}", base + i
            by_customer.put(orjson.dumps(cid), DEADLINE_CODEC.encode(JourneyDeadline(deadline, 0)))
            by_deadline.put(orjson.dumps(due_key(deadline, f"{i:064x}")),
                            DUE_CODEC.encode(DueEntry(cid, deadline, 0)))
        by_customer.flush()
        by_deadline.flush()
        t0 = time.process_time()
        found_all = [k for k, v in by_customer.items()
                     if DEADLINE_CODEC.decode(v).deadline <= mark]
        full_s = time.process_time() - t0
        t0 = time.process_time()
        found = []
        limit = due_ms(mark)
        for k, v in by_deadline.items():
            if due_key_ms(orjson.loads(k)) > limit:
                break
            entry = DUE_CODEC.decode(v)
            if entry.deadline <= mark:
                found.append(entry.customer_id)
        indexed_s = time.process_time() - t0
        by_customer.close()
        by_deadline.close()
    assert len(found) == len(found_all) == due
    return {"full_scan_ms": full_s * 1e3, "indexed_ms": indexed_s * 1e3}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    p.add_argument("--index-customers", type=int, default=1_000_000,
                   help="customers with open journeys for the silence check's figure (0: skip)")
    p.add_argument("--plumbing", action="store_true",
                   help="also the per-event cost of the metrics and of the andon's path")
    args = p.parse_args()
    records = make_events(args.events, args.customers)
    best = max((run(records) for _ in range(args.repeat)), key=lambda r: r["events_per_s"])
    print(f"domain alone (process_record + state codec, one core): "
          f"{best['events_per_s']:,.0f} events/s, {best['us_per_event']:.1f} µs/event "
          f"({best['events']:,} events, {args.customers:,} customers, "
          f"{best['alerts']:,} alerts; best of {args.repeat})")
    print(f"customer state encoded: median {best['state_median_b']:,.0f} B, p90 "
          f"{best['state_p90_b']:,} B, {best['state_mb_per_1m']:,.0f} MB of values per 1M "
          "customers (values only: RocksDB's keys, index and compression not included)")
    if args.index_customers:
        c = silence_check(args.index_customers, 100)
        print(f"silence check at {args.index_customers:,} customers with open journeys, 100 "
              f"due: {c['indexed_ms']:.2f} ms CPU reading the deadline-ordered index, "
              f"{c['full_scan_ms']:,.0f} ms scanning every customer's entry")
    if args.plumbing:
        p = plumbing(records)
        print(f"metrics: {p['metrics_per_event_us']:.2f} µs/event counted per event, "
              f"{p['metrics_per_batch_us']:.2f} µs/event counted per batch of 500")
        print(f"andon observations: {p['andon_buffer_us']:.2f} µs/event buffered and encoded "
              f"({p['andon_records']:,} records), {p['andon_judge_us']:.2f} µs/event judged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
