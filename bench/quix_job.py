"""Contestant: Quix Streams doing the same job, with its RocksDB state and changelog."""

from __future__ import annotations

import time
from typing import Any

import msgspec
import orjson
from quixstreams import Application

from agents.domain.customer_state import CustomerState
from agents.domain.moment_processor import process_record
from bench.job import MAX_BYTES, MODEL, JobEnv


def main() -> None:
    env = JobEnv.from_env()
    app = Application(
        broker_address=env.bootstrap, consumer_group=env.group, auto_offset_reset="earliest",
        state_dir=env.state_dir, loglevel="WARNING", commit_interval=1.0,
    )
    source = app.topic(env.input_topic, key_deserializer="bytes", value_deserializer="bytes")
    sink = app.topic(env.output_topic, key_serializer="bytes", value_serializer="bytes")

    def state_of(_cid: str, state: Any) -> CustomerState | None:
        kept = state.get("s")  # Quix keeps JSON: the state's arrays, as msgspec gives them
        return None if kept is None else msgspec.convert(kept, CustomerState)

    def step(value: bytes, key: bytes, timestamp: int, headers: Any, state: Any) -> list:
        done = process_record(value, key, lambda cid: state_of(cid, state), MODEL, MAX_BYTES,
                              time.time())
        if done.state is not None:
            state.set("s", msgspec.to_builtins(done.state))
        return [orjson.dumps(out.value) for out in done.outputs]

    sdf = app.dataframe(source)
    sdf = sdf.apply(step, stateful=True, metadata=True, expand=True)
    sdf.to_topic(sink)
    app.run()


if __name__ == "__main__":
    main()
