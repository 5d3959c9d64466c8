"""The v1 → v2 upgrade story: inputs, and the run both versions of the code make of them.

``python -m tests.golden.v1_upgrade`` run in a tree of the last v1 commit (table values as
orjson JSON) writes ``v1_upgrade.json``: every customer's v1 state after the first part
of the traffic, and the alerts and scores the v1 code gives for the rest (new events,
events read again from before the upgrade, silence checks and their re-reads). The test
(tests/test_state_codec.py) decodes those v1 states with today's codec and runs the rest
with today's code: it must give the same alerts, byte for byte, and the same scores.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from agents.domain.customer_view import score_line
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import Output, process_record, process_silence_check
from agents.domain.timestamps import parse
from streams.offline.traffic import TrafficGenerator

HERE = Path(__file__).with_name("v1_upgrade.json")
CFG = ModelConfig()
NOW = 1.9e9
SPLIT = 2500


def records() -> list[tuple[bytes, bytes]]:
    events = list(TrafficGenerator(seed=3, customers=40).events(1.767e9, 30.0, 4000))
    return [(e["customer_id"].encode(), orjson.dumps(e)) for e in events]


def first_part(states: dict[str, Any]) -> None:
    """Before the upgrade: events, then a silence check of every customer (its drop-offs
    are kept in the states, and re-sent when the check is read again after it)."""
    recs = records()
    for i, (k, v) in enumerate(recs[:SPLIT]):
        d = process_record(v, k, states.get, CFG, 1 << 20, NOW, (0, i))
        if d.state is not None:
            states[d.customer_id] = d.state
    mark = clock(orjson.loads(recs[SPLIT - 1][1])["occurred_at"], 0)
    for cid in sorted(states):
        c = process_silence_check(states[cid], cid, mark, CFG, NOW)
        if c.state is not None:
            states[cid] = c.state


def second_part(states: dict[str, Any]) -> Iterator[bytes]:
    """The rest after the upgrade, as lines: every alert, then every customer's score."""
    recs = records()

    def lines(outputs: list[Output]) -> Iterator[bytes]:
        for o in outputs:
            yield orjson.dumps([o.kind, o.key, o.value], option=orjson.OPT_SORT_KEYS)

    def step(i: int, position: tuple[int, int] | None) -> Iterator[bytes]:
        k, v = recs[i]
        d = process_record(v, k, states.get, CFG, 1 << 20, NOW, position)
        if d.state is not None:
            states[d.customer_id] = d.state
        yield from lines(d.outputs)

    for i in range(SPLIT - 300, SPLIT):  # read again after the upgrade, by position
        yield from step(i, (0, i))
    for i in range(SPLIT - 600, SPLIT - 300):  # and a producer's retries (no position)
        yield from step(i, None)
    mark = orjson.loads(recs[SPLIT - 1][1])["occurred_at"]
    for n, i in enumerate(range(SPLIT, len(recs))):
        yield from step(i, (0, i))
        if n % 500 == 0:
            for cid in sorted(states):
                for _ in range(2):  # a check, and the same check read again
                    c = process_silence_check(states.get(cid), cid, clock(mark, n), CFG, NOW)
                    if c.state is not None:
                        states[cid] = c.state
                    yield from lines(c.outputs)
    for cid in sorted(states):
        yield orjson.dumps(score_line(cid, states[cid]))


def clock(first: str, n: int) -> float:
    """The stream's clock at the ``n``-th event after the upgrade."""
    return parse(first) + 3600.0 + 30.0 * n


def digest(lines: list[bytes]) -> str:
    return hashlib.sha256(b"\n".join(lines)).hexdigest()


def write(encode: Callable[[Any], bytes]) -> None:
    states: dict[str, Any] = {}
    first_part(states)
    stored = {cid: encode(st).decode() for cid, st in sorted(states.items())}
    out = list(second_part(states))
    alerts = [orjson.loads(x) for x in out if x.startswith(b"[")]
    kinds: dict[str, int] = {}
    for kind, _, _ in alerts:
        kinds[kind] = kinds.get(kind, 0) + 1
    HERE.write_bytes(orjson.dumps({
        "states": stored,
        "alerts_by_kind": dict(sorted(kinds.items())),
        "scores": [orjson.loads(x) for x in out if not x.startswith(b"[")],
        "digest": digest(out),
    }, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    write(orjson.dumps)
    sys.stdout.write(f"wrote {HERE}\n")
