"""A tiny run of the benchmark script on the real broker, so the script cannot rot.

The figures of a smoke run mean nothing; ``make bench`` makes the real ones
(docs/performance.md).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.kafka
REPO = Path(__file__).resolve().parent.parent


def test_the_benchmark_runs_every_contestant_and_reports_every_figure(
    kafka: str, tmp_path: Path
) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--bootstrap", kafka, "--json", str(out)],
        cwd=REPO, capture_output=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    res = orjson.loads(out.read_bytes())
    assert set(res["contestants"]) == {"raw", "service", "quix"}
    for name, r in res["contestants"].items():
        assert r["events_per_s"] > 0, name
        assert r["peak_rss_mb"] > 0, name
        assert r["latency"]["samples"] > 0, name
    svc = res["contestants"]["service"]
    assert svc["restore"]["ready_s"] > 0 and svc["state_bytes_per_1m_customers"] > 0
    assert svc["restore"]["records_restored"] > 0 and svc["restore"]["records_per_s"] > 0
    assert len(svc["two_workers"]["cpu_share"]) == 2
    assert "events/s" in done.stdout.decode()
