"""Micro-benchmark: the domain alone, with the state encoded as the table stores it.

    python bench/domain.py                    # 100k events, 10k customers
    python bench/domain.py --events 20000     # quicker

One core, no Kafka: every event goes through
``agents.domain.moment_processor.process_record`` with the customer's state decoded from
bytes before and encoded to bytes after, as the service's table does (orjson, the bytes
of ``streams.faust_ext.table_access``). The events are the benchmark's own
(:func:`bench.run.make_events`). This is the floor under every contestant of
``bench/run.py``: a worker cannot be faster than its job.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from agents.domain.moment_processor import process_record  # noqa: E402
from bench.job import MAX_BYTES, MODEL  # noqa: E402
from streams.offline.traffic import TrafficGenerator  # noqa: E402

START = 1_767_225_600.0


def make_events(n: int, customers: int, seed: int = 11) -> list[tuple[bytes, bytes]]:
    """The same synthetic traffic as ``bench/run.py`` (20 ms of event time apart)."""
    gen = TrafficGenerator(seed=seed, customers=customers)
    return [(e["customer_id"].encode(), orjson.dumps(e))
            for e in gen.events(START, 0.02, n)]


def run(records: list[tuple[bytes, bytes]]) -> dict[str, float]:
    """Process ``records`` once from empty state; events/s of CPU time on this core."""
    table: dict[str, bytes] = {}
    loads, dumps = orjson.loads, orjson.dumps

    def state_of(customer_id: str) -> Any:
        raw = table.get(customer_id)
        return None if raw is None else loads(raw)

    now = time.time()
    outputs = 0
    t0 = time.process_time()
    for i, (key, value) in enumerate(records):
        done = process_record(value, key, state_of, MODEL, MAX_BYTES, now, (0, i))
        if done.state is not None:
            table[done.customer_id] = dumps(done.state)  # type: ignore[index]
        outputs += len(done.outputs)
    cpu = time.process_time() - t0
    return {"events": len(records), "cpu_s": cpu, "events_per_s": len(records) / cpu,
            "us_per_event": cpu * 1e6 / len(records), "alerts": outputs}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    args = p.parse_args()
    records = make_events(args.events, args.customers)
    best = max((run(records) for _ in range(args.repeat)), key=lambda r: r["events_per_s"])
    print(f"domain alone (process_record + state codec, one core): "
          f"{best['events_per_s']:,.0f} events/s, {best['us_per_event']:.1f} µs/event "
          f"({best['events']:,} events, {args.customers:,} customers, "
          f"{best['alerts']:,} alerts; best of {args.repeat})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
