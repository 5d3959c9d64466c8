"""Acceptance: one file through the real pipeline and through ``mot replay`` gives the same
alerts of every kind (same ids) and the same final scores; ``mot replay --from-topic``
reads the input topic up to its end offsets and agrees too.

The file (tests/replay_scenario.py) has journeys that go silent, are abandoned or
complete, and a touchpoint that goes red and recovers. The worker's silence check runs
every second; its wall-clock idle advance is set beyond the test's length, so the
stream's watermark is its partitions' latest event times, as in the replay.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests import replay_scenario as scen
from tests.harness import (
    WorkerProcess,
    consume,
    isolated_env,
    latest_by_key,
    mot,
)

pytestmark = pytest.mark.kafka

KINDS = ("failed-moment", "vicious-circle", "virtuous-circle", "drop-off", "touchpoint-status")




def ids_by_kind(alerts: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {k: set() for k in KINDS}
    for a in alerts:
        out.setdefault(a["kind"], set()).add(a["alert_id"])
    return out


async def streamed_alerts(kafka: str, env: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for var, topic in env.items():
        if var.startswith("MOT_TOPIC_ALERTS_"):
            out.extend(r.json() for r in await consume(kafka, topic, expect=0, timeout=30,
                                                        idle=3))
    return out


@pytest.fixture
def worker(kafka: str, tmp_path: Path):
    env = isolated_env(kafka, tmp_path / "data")
    env.update(scen.SETTINGS)
    env["MOT_JOURNEY_CHECK_INTERVAL_S"] = "1"
    env["MOT_JOURNEY_IDLE_ADVANCE_S"] = "86400"
    w = WorkerProcess(env, tmp_path / "worker.log")
    w.start()
    yield w
    w.stop()


def replay_ids(env: dict[str, str], tmp_path: Path, name: str, *source: str
               ) -> tuple[dict[str, set[str]], dict[str, dict[str, Any]]]:
    out, scores = tmp_path / f"{name}.jsonl", tmp_path / f"{name}-scores.jsonl"
    done = mot(env, "replay", *source, "-o", str(out), "--scores", str(scores),
               "--workers", "2")
    assert done.returncode == 0, done.stderr
    alerts = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    by_cid = {s["customer_id"]: s for s in map(orjson.loads, scores.read_bytes().splitlines())}
    return ids_by_kind(alerts), by_cid


async def test_every_alert_kind_and_the_scores_agree_with_the_kafka_pipeline(
    kafka: str, worker: WorkerProcess, tmp_path: Path
) -> None:
    env = worker.env
    src = scen.write(tmp_path / "scenario.jsonl")
    events = len(scen.scenario())
    # at a modest rate, so the andon sees the touchpoint's moments in about event-time order
    produced = await asyncio.to_thread(mot, env, "produce", str(src), "--rate", "60")
    assert produced.returncode == 0, produced.stderr

    offline, scores = await asyncio.to_thread(replay_ids, env, tmp_path, "file", str(src))
    assert len(offline["drop-off"]) == 32 and len(offline["touchpoint-status"]) >= 2
    assert all(offline[k] for k in ("failed-moment", "vicious-circle"))

    changelog = f"{env['MOT_APP_ID']}-customer-state-changelog"
    deadline = time.monotonic() + 240
    table: dict[str, Any] = {}
    while time.monotonic() < deadline:
        table = await latest_by_key(kafka, changelog)
        if sum(st.moments for st in table.values() if st) >= events:
            break
        await asyncio.sleep(2)
    assert set(table) == set(scores), worker.log_tail()
    for cid, s in scores.items():
        assert table[cid].score == pytest.approx(s["score"], rel=1e-12, abs=1e-12), cid
        assert table[cid].moments == s["moments"]

    streamed = ids_by_kind(await streamed_alerts(kafka, env))
    while streamed != offline and time.monotonic() < deadline:
        await asyncio.sleep(2)  # silence checks and andon batches still on their way
        streamed = ids_by_kind(await streamed_alerts(kafka, env))
    for kind in sorted(set(streamed) | set(offline)):
        assert streamed.get(kind, set()) == offline.get(kind, set()), (kind, worker.log_tail())

    from_topic, topic_scores = await asyncio.to_thread(replay_ids, env, tmp_path, "topic",
                                                       "--from-topic")
    assert from_topic == offline
    assert topic_scores == scores
