"""The customer state's figures without Kafka: encoded size, and the CPU cost of one event
with the state read from and written back to bytes as the worker's table does.

On the benchmark's data (``bench.run.make_events``: the same events, customers and seed),
``python -m bench.state_figures --events 100000 --customers 10000`` prints the median and
p90 encoded state, the encoded values' total scaled to 1M customers (values only: RocksDB's
keys, index and compression are not in it), and the best of two passes of CPU time per
event. It runs unchanged in a tree of the v1 (JSON) encoding, so before and after are
measured with the same script.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record
from bench.run import make_events

try:
    from agents.domain.customer_state import decode_state, encode_state
    DECODE: Callable[[bytes], Any] = decode_state
    ENCODE: Callable[[Any], bytes] = encode_state
except ImportError:  # a tree of the v1 encoding
    DECODE, ENCODE = orjson.loads, orjson.dumps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--customers", type=int, default=10_000)
    args = p.parse_args()
    cfg = ModelConfig()
    events = make_events(args.events, args.customers)
    best = float("inf")
    stored: dict[bytes, bytes] = {}
    for _ in range(2):
        stored = {}
        t0 = time.process_time()
        for offset, (key, value) in enumerate(events):
            raw = stored.get(key)
            done = process_record(value, key, lambda _c, r=raw: None if r is None else DECODE(r),
                                  cfg, 1 << 20, 1.9e9, (0, offset))
            if done.state is not None:
                stored[key] = ENCODE(done.state)
        best = min(best, (time.process_time() - t0) / len(events))
    sizes = sorted(len(v) for v in stored.values())
    per_1m = sum(sizes) / len(sizes) * 1e6
    print(f"events {len(events):,}, customers {len(sizes):,}: state median "
          f"{statistics.median(sizes):,.0f} B, p90 {sizes[int(0.9 * len(sizes))]:,} B, "
          f"values {per_1m / 1e6:,.0f} MB per 1M customers, "
          f"{best * 1e6:.1f} µs CPU per event (process_record + decode + encode)")


if __name__ == "__main__":
    main()
