"""The benchmark's stateful job, shared by every contestant: the service's own core.

Each contestant reads raw records from the input topic, runs
``agents.domain.moment_processor.process_record`` with per-customer state, and writes
the alerts it returns to the output topic. Only the plumbing around it differs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from agents.domain.model_config import ModelConfig
from streams.settings import Settings


@dataclass(frozen=True)
class JobEnv:
    bootstrap: str
    input_topic: str
    output_topic: str
    group: str
    state_dir: str

    @classmethod
    def from_env(cls) -> JobEnv:
        return cls(
            bootstrap=os.environ["BENCH_BOOTSTRAP"],
            input_topic=os.environ["BENCH_INPUT"],
            output_topic=os.environ["BENCH_OUTPUT"],
            group=os.environ["BENCH_GROUP"],
            state_dir=os.environ.get("BENCH_STATE_DIR", "/tmp/bench-state"),
        )


SETTINGS = Settings.from_env()
MODEL = ModelConfig.from_settings(SETTINGS)
MAX_BYTES = SETTINGS.max_record_bytes
