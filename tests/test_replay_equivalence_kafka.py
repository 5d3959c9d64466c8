"""The offline answer and the streaming answer agree, and ``mot produce`` backfills.

The sample file goes through the real pipeline (``mot produce`` into a worker process
on the real broker) and through ``mot replay``; both must give the same alert ids and
the same final running scores (the worker's table, read from its changelog).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.settings import Settings
from tests.harness import REPO, WorkerProcess, consume, latest_by_key, service_env
from tests.test_replay import SAMPLE

pytestmark = pytest.mark.kafka


def mot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams.cli", *args], cwd=REPO, env=env,
                          capture_output=True, timeout=300)


def isolated_env(kafka: str, data_dir: Path) -> dict[str, str]:
    """The harness' environment, with every alert topic of the settings made private."""
    env = service_env(kafka, data_dir)
    for f in fields(Settings):
        var = "MOT_" + f.name.upper()
        if f.name.startswith("topic_alerts_") and var not in env:
            env[var] = f"{env['MOT_APP_ID']}.{f.name}"
    return env


async def all_alerts(kafka: str, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every alert on every alert topic, by id."""
    out: dict[str, dict[str, Any]] = {}
    for var, topic in env.items():
        if var.startswith("MOT_TOPIC_ALERTS_"):
            for r in await consume(kafka, topic, expect=0, timeout=30, idle=3):
                out.setdefault(r.json()["alert_id"], r.json())
    return out


@pytest.fixture
def worker(kafka: str, tmp_path: Path):
    env = isolated_env(kafka, tmp_path / "data")
    # The silence timer drops journeys by the stream's wall-clock-driven watermark, which
    # no file holds; off here, so both sides see only what the records decide.
    env["MOT_JOURNEY_CHECK_INTERVAL_S"] = "86400"
    w = WorkerProcess(env, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


async def test_replay_and_the_kafka_pipeline_give_the_same_alerts_and_scores(
    kafka: str, worker: WorkerProcess, tmp_path: Path
) -> None:
    env = worker.env
    produced = await asyncio.to_thread(mot, env, "produce", str(SAMPLE))
    assert produced.returncode == 0, produced.stderr
    assert "published 4,000 events" in produced.stderr.decode()

    replayed = await asyncio.to_thread(mot, env, "replay", str(SAMPLE),
                                       "-o", str(tmp_path / "alerts.jsonl"),
                                       "--scores", str(tmp_path / "scores.jsonl"))
    assert replayed.returncode == 0, replayed.stderr
    offline = [orjson.loads(x) for x in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    scores = {s["customer_id"]: s for s in
              map(orjson.loads, (tmp_path / "scores.jsonl").read_bytes().splitlines())}
    assert len(offline) > 50 and len(scores) == 200

    # the worker is done when its table has counted every moment
    changelog = f"{env['MOT_APP_ID']}-customer-state-changelog"
    deadline = time.monotonic() + 240
    table: dict[str, Any] = {}
    while time.monotonic() < deadline:
        table = await latest_by_key(kafka, changelog)
        if sum(st.moments for st in table.values() if st) >= 4000:
            break
        await asyncio.sleep(2)
    assert set(table) == set(scores), worker.log_tail()
    for cid, s in scores.items():
        assert table[cid].score == pytest.approx(s["score"], rel=1e-12, abs=1e-12), cid
        assert table[cid].moments == s["moments"]

    expected = {a["alert_id"] for a in offline}
    streamed = await all_alerts(kafka, env)
    while set(streamed) != expected and time.monotonic() < deadline:
        await asyncio.sleep(2)  # alerts still in the worker's producer buffer
        streamed = await all_alerts(kafka, env)
    assert set(streamed) == expected, worker.log_tail()
    for a in offline:  # the same alert, apart from when it was detected
        s = streamed[a["alert_id"]]
        assert {k: v for k, v in s.items() if k != "detected_at"} == \
               {k: v for k, v in a.items() if k != "detected_at"}


async def test_produce_refuses_an_invalid_file_or_dead_letters_its_bad_lines(
    kafka: str, tmp_path: Path
) -> None:
    env = isolated_env(kafka, tmp_path / "data")
    src = tmp_path / "backfill.jsonl"
    good = [{"event_id": f"g{i}", "customer_id": f"c{i}", "occurred_at": "2026-11-01T10:00:00Z",
             "touchpoint": "support.phone", "csat": 4} for i in range(2)]
    src.write_bytes(orjson.dumps(good[0]) + b"\n{not json\n" + orjson.dumps(good[1]) + b"\n")

    refused = await asyncio.to_thread(mot, env, "produce", str(src))
    assert refused.returncode == 1
    err = refused.stderr.decode()
    assert f"{src}:2: invalid_json:" in err and "nothing was published" in err
    assert await consume(kafka, env["MOT_TOPIC_EVENTS"], timeout=5, idle=0) == []

    done = await asyncio.to_thread(mot, env, "produce", str(src), "--dead-letter",
                                   "--rate", "50")
    assert done.returncode == 0, done.stderr
    events = await consume(kafka, env["MOT_TOPIC_EVENTS"], expect=2, timeout=30, idle=1)
    assert sorted((r.key, r.json()["event_id"]) for r in events) == [(b"c0", "g0"),
                                                                     (b"c1", "g1")]
    dead = await consume(kafka, env["MOT_TOPIC_DEAD_LETTER"], expect=1, timeout=30, idle=1)
    assert [(r.value, r.headers["mot.reason"], r.headers["mot.source.line"]) for r in dead] \
        == [(b"{not json", b"invalid_json", b"2")]
    assert os.path.basename(dead[0].headers["mot.source.file"].decode()) == "backfill.jsonl"
