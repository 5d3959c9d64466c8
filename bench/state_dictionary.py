"""Train the Zstandard dictionary the customer state's encoding compresses against.

The dictionary is part of a state version's format (``agents/domain/codec.py``): the file
``agents/domain/customer_state.v<N>.zdict`` is written once per version and never changed
after values were written with it; a new dictionary goes with a new version.

It is trained on the traffic generator's events with a seed and a customer count other
than the benchmark's (``bench/run.py`` uses seed 11), so the benchmark's figures are not
measured on the states it was trained on: every fourth state a customer takes after an
event, through the same ``process_record`` the worker runs, encoded as the struct is.

    python -m bench.state_dictionary            # writes the current version's file
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import msgspec
import zstandard

from agents.domain.customer_state import DICTIONARY, CustomerState
from agents.domain.model_config import ModelConfig
from agents.domain.moment_processor import process_record
from bench.run import make_events

SEED, EVENTS, CUSTOMERS, SIZE = 3, 40_000, 4_000, 4096


def training_states(events: int, customers: int, seed: int) -> list[bytes]:
    cfg = ModelConfig()
    enc = msgspec.msgpack.Encoder()
    states: dict[bytes, CustomerState] = {}
    out: list[bytes] = []
    for offset, (key, value) in enumerate(make_events(events, customers, seed)):
        done = process_record(value, key, lambda _c, k=key: states.get(k), cfg, 1 << 20,
                              1.9e9, (0, offset))
        if done.state is not None:
            states[key] = done.state
            if offset % 4 == 0:
                out.append(enc.encode(done.state))
    random.Random(1).shuffle(out)
    return out[:8000]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=DICTIONARY)
    args = p.parse_args()
    d = zstandard.train_dictionary(SIZE, training_states(EVENTS, CUSTOMERS, SEED))
    args.out.write_bytes(d.as_bytes())
    print(f"{args.out}: {len(d.as_bytes()):,} B")


if __name__ == "__main__":
    main()
