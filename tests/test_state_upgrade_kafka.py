"""Upgrading a worker over v1 tables and changelogs (the orjson JSON values of before).

A worker of the last v1 commit scores the first half of the sample on the real broker and
stops; a worker of this tree starts on the same data directory, topics and changelogs and
scores the rest. The alerts and final scores must be those of a run without the upgrade
(``mot replay`` of the whole file, which the pipeline matches:
tests/test_replay_equivalence_kafka.py).
"""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.faults.scenario import STATUS, kind_of
from tests.harness import REPO, WorkerProcess, latest_by_key
from tests.test_replay import SAMPLE
from tests.test_replay_equivalence_kafka import (
    all_alerts,
    isolated_env,
    mot,
    without_detection,
)

pytestmark = pytest.mark.kafka

V1_COMMIT = "e4b31d3"  # the last commit whose tables hold orjson JSON values


class V1Worker(WorkerProcess):
    """A worker run from a checkout of the v1 commit."""

    tree: Path

    def start(self, timeout: float = 90.0) -> WorkerProcess:
        log = open(self.log_path, "ab")  # noqa: SIM115  (kept open for the process' life)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streams.worker"], cwd=self.tree,
            env={**self.env, "PYTHONPATH": str(self.tree)}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.wait_healthy(timeout)
        return self


async def counted(kafka: str, env: dict[str, str], moments: int, worker: WorkerProcess) -> None:
    """Wait until the customer-state changelog (v1 or v2 values) has counted ``moments``."""
    changelog = f"{env['MOT_APP_ID']}-customer-state-changelog"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        table = await latest_by_key(kafka, changelog)
        if sum(st.moments for st in table.values() if st) >= moments:
            return
        await asyncio.sleep(2)
    raise AssertionError(worker.log_tail())


async def test_a_worker_upgraded_over_v1_tables_carries_on_with_the_same_results(
    kafka: str, tmp_path: Path
) -> None:
    tree = tmp_path / "v1"
    tree.mkdir()
    archive = subprocess.run(["git", "archive", V1_COMMIT], cwd=REPO, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    lines = gzip.decompress(SAMPLE.read_bytes()).splitlines(keepends=True)
    first, rest = tmp_path / "first.jsonl", tmp_path / "rest.jsonl"
    first.write_bytes(b"".join(lines[:2000]))
    rest.write_bytes(b"".join(lines[2000:]))

    env = isolated_env(kafka, tmp_path / "data")
    env["MOT_JOURNEY_CHECK_INTERVAL_S"] = "86400"  # as in the replay equivalence test
    env["MOT_REPLAY_SILENCE_CHECKS"] = "0"
    old = V1Worker(env, tmp_path / "v1-worker.log")
    old.tree = tree
    old.start()
    try:
        assert (await asyncio.to_thread(mot, env, "produce", str(first))).returncode == 0
        await counted(kafka, env, 2000, old)
    finally:
        assert old.stop() == 0, old.log_tail()
    changelog = f"{env['MOT_APP_ID']}-customer-state-changelog"
    raw = await latest_by_key(kafka, changelog, decode=lambda b: b)
    assert raw and all(v[:1] == b"{" for v in raw.values() if v), "v1 values in the changelog"

    new = WorkerProcess(env, tmp_path / "worker.log")
    new.start()
    try:
        assert (await asyncio.to_thread(mot, env, "produce", str(rest))).returncode == 0
        await counted(kafka, env, 4000, new)
        replayed = await asyncio.to_thread(mot, env, "replay", str(SAMPLE),
                                           "-o", str(tmp_path / "alerts.jsonl"),
                                           "--scores", str(tmp_path / "scores.jsonl"))
        assert replayed.returncode == 0, replayed.stderr
        offline = [orjson.loads(x)
                   for x in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
        scores = {s["customer_id"]: s for s in
                  map(orjson.loads, (tmp_path / "scores.jsonl").read_bytes().splitlines())}
        table = await latest_by_key(kafka, changelog)
        assert set(table) == set(scores)
        for cid, s in scores.items():
            assert table[cid].score == pytest.approx(s["score"], rel=1e-12, abs=1e-12), cid
            assert table[cid].moments == s["moments"]
        # Every kind but touchpoint status, which the replay judges in input order and
        # the stream's andon in the order the partitions' batches meet (see
        # tests/test_replay_equivalence_kafka.py).
        want: dict[str, dict[str, dict[str, Any]]] = {}
        for a in offline:
            if kind_of(a) != STATUS:
                want.setdefault(kind_of(a), {})[a["alert_id"]] = a

        def ids(found: dict[str, list[dict[str, Any]]]) -> dict[str, set[str]]:
            return {k: {a["alert_id"] for a in v} for k, v in found.items() if k != STATUS}

        target = {k: set(v) for k, v in want.items()}
        assert len(target) >= 3, target.keys()
        deadline = time.monotonic() + 120
        streamed = await all_alerts(kafka, env)
        while ids(streamed) != target and time.monotonic() < deadline:
            await asyncio.sleep(2)
            streamed = await all_alerts(kafka, env)
        assert ids(streamed) == target, new.log_tail()
        for kind, alerts in streamed.items():
            if kind != STATUS:
                for s in alerts:
                    assert without_detection(s) == without_detection(want[kind][s["alert_id"]])
        # what the new worker wrote is v2
        raw = await latest_by_key(kafka, changelog, decode=lambda b: b)
        assert any(v[:1] == b"\x92" for v in raw.values() if v)
    finally:
        new.stop()
