"""Contestant: a bare aiokafka consume → process → produce loop (the Python ceiling).

State is a plain dict (not durable): what a hand-written loop would do. Runs until killed.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from agents.domain.moment_processor import process_record
from bench.job import MAX_BYTES, MODEL, JobEnv


async def main() -> None:
    env = JobEnv.from_env()
    consumer = AIOKafkaConsumer(
        env.input_topic, bootstrap_servers=env.bootstrap, group_id=env.group,
        auto_offset_reset="earliest", enable_auto_commit=True, auto_commit_interval_ms=500,
        max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(bootstrap_servers=env.bootstrap, linger_ms=5,
                                max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    state: dict[str, object] = {}
    get = state.get
    out_topic = env.output_topic
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=200, max_records=10000)
            now = time.time()
            for records in batch.values():
                for r in records:
                    done = process_record(r.value, r.key, get, MODEL, MAX_BYTES, now)
                    if done.state is not None:
                        state[done.customer_id] = done.state
                    for out in done.outputs:
                        await producer.send(out_topic, orjson.dumps(out.value),
                                            key=out.key.encode())
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(main())
